package postgres_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/fleetkit/fleetkit/sources"
	"github.com/fleetkit/fleetkit/sources/postgres"
)

func optionsNode(t *testing.T, text string) *yaml.Node {
	t.Helper()
	var doc yaml.Node
	require.NoError(t, yaml.Unmarshal([]byte(text), &doc))
	return doc.Content[0]
}

func TestFactoryNamesOptionAndLine(t *testing.T) {
	_, err := postgres.Factory("src", optionsNode(t, "dsn: postgres://u@h/db\nquery: select 1 as id\nmax_rows: -1\n"))
	var ce *sources.ConfigError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, "max_rows", ce.Path, err.Error())
	require.Equal(t, 3, ce.Line, err.Error())

	_, err = postgres.Factory("src", optionsNode(t, "dsn: x\nsql: select 1\n"))
	require.ErrorIs(t, err, sources.ErrUnknownKey)
}
