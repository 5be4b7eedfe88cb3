package prometheus_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/fleetkit/fleetkit/sources"
	"github.com/fleetkit/fleetkit/sources/prometheus"
)

func optionsNode(t *testing.T, text string) *yaml.Node {
	t.Helper()
	var doc yaml.Node
	require.NoError(t, yaml.Unmarshal([]byte(text), &doc))
	return doc.Content[0]
}

func TestFactoryNamesOptionAndLine(t *testing.T) {
	_, err := prometheus.Factory("src", optionsNode(t, "url: http://prom:9090\nup: up\nid_label: 9x\n"))
	var ce *sources.ConfigError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, "id_label", ce.Path, err.Error())
	require.Equal(t, 3, ce.Line, err.Error())

	_, err = prometheus.Factory("src", optionsNode(t, "url: http://p\nquery: up\n"))
	require.ErrorIs(t, err, sources.ErrUnknownKey)
}
