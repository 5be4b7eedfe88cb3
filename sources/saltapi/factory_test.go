package saltapi_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/fleetkit/fleetkit/sources"
	"github.com/fleetkit/fleetkit/sources/saltapi"
)

func optionsNode(t *testing.T, text string) *yaml.Node {
	t.Helper()
	var doc yaml.Node
	require.NoError(t, yaml.Unmarshal([]byte(text), &doc))
	return doc.Content[0]
}

func TestFactoryNamesOptionAndLine(t *testing.T) {
	_, err := saltapi.Factory("src", optionsNode(t, "url: https://salt:8000\nusername: u\nmode: ssh\n"))
	var ce *sources.ConfigError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, "mode", ce.Path, err.Error())
	require.Equal(t, 3, ce.Line, err.Error())

	_, err = saltapi.Factory("src", optionsNode(t, "url: https://salt\nuser: u\n"))
	require.ErrorIs(t, err, sources.ErrUnknownKey)
}
