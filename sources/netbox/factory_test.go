package netbox_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/fleetkit/fleetkit/sources"
	"github.com/fleetkit/fleetkit/sources/netbox"
)

func optionsNode(t *testing.T, text string) *yaml.Node {
	t.Helper()
	var doc yaml.Node
	require.NoError(t, yaml.Unmarshal([]byte(text), &doc))
	return doc.Content[0]
}

func TestFactoryNamesOptionAndLine(t *testing.T) {
	_, err := netbox.Factory("src", optionsNode(t, "url: https://nb.example\ntoken: t\npage_size: -5\n"))
	var ce *sources.ConfigError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, "page_size", ce.Path, err.Error())
	require.Equal(t, 3, ce.Line, err.Error())

	_, err = netbox.Factory("src", optionsNode(t, "url: https://nb.example\ntokn: t\n"))
	require.ErrorIs(t, err, sources.ErrUnknownKey)
}
