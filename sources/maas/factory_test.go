package maas_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/fleetkit/fleetkit/sources"
	"github.com/fleetkit/fleetkit/sources/maas"
)

func optionsNode(t *testing.T, text string) *yaml.Node {
	t.Helper()
	var doc yaml.Node
	require.NoError(t, yaml.Unmarshal([]byte(text), &doc))
	return doc.Content[0]
}

func TestFactoryNamesOptionAndLine(t *testing.T) {
	_, err := maas.Factory("src", optionsNode(t, "url: http://maas:5240/MAAS\napi_key: a:b:c\nid: uuid\n"))
	var ce *sources.ConfigError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, "id", ce.Path, err.Error())
	require.Equal(t, 3, ce.Line, err.Error())

	_, err = maas.Factory("src", optionsNode(t, "url: http://m\napikey: a:b:c\n"))
	require.ErrorIs(t, err, sources.ErrUnknownKey)
}
