package alertmanager_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/fleetkit/fleetkit/sources"
	"github.com/fleetkit/fleetkit/sources/alertmanager"
)

func optionsNode(t *testing.T, text string) *yaml.Node {
	t.Helper()
	var doc yaml.Node
	require.NoError(t, yaml.Unmarshal([]byte(text), &doc))
	return doc.Content[0]
}

func TestFactoryNamesOptionAndLine(t *testing.T) {
	_, err := alertmanager.Factory("src", optionsNode(t, "url: http://am:9093\nunknown_severity: meh\n"))
	var ce *sources.ConfigError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, "unknown_severity", ce.Path, err.Error())
	require.Equal(t, 2, ce.Line, err.Error())

	_, err = alertmanager.Factory("src", optionsNode(t, "url: http://am\nfilter: [a]\n"))
	require.ErrorIs(t, err, sources.ErrUnknownKey)
}
