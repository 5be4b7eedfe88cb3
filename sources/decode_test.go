package sources_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/fleetkit/fleetkit/sources"
)

type decodeOpts struct {
	URL   string `yaml:"url"`
	Pages int    `yaml:"pages"`
}

type nopSource struct{ name string }

func (s *nopSource) Name() string { return s.name }
func (s *nopSource) Fetch(context.Context) ([]sources.Observation, error) {
	return nil, nil
}

func newNop(name string, o decodeOpts) (*nopSource, error) {
	if o.URL == "" {
		return nil, &sources.ConfigError{Path: "url", Err: errString("is required")}
	}
	return &nopSource{name}, nil
}

type errString string

func (e errString) Error() string { return string(e) }

func TestDecodeGivesLinesAndNoTypedNil(t *testing.T) {
	var n yaml.Node
	require.NoError(t, yaml.Unmarshal([]byte("pages: 2\nurl: \"\"\n"), &n))
	src, err := sources.Decode("x", &n, newNop)
	require.Nil(t, src, "a failed factory must return a nil Source, not a typed nil")
	var ce *sources.ConfigError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, 2, ce.Line, "the line of the url option")

	require.NoError(t, yaml.Unmarshal([]byte("url: http://x\npagez: 2\n"), &n))
	_, err = sources.Decode("x", &n, newNop)
	require.ErrorIs(t, err, sources.ErrUnknownKey)
	require.ErrorContains(t, err, "pagez")

	require.NoError(t, yaml.Unmarshal([]byte("url: http://x\n"), &n))
	src, err = sources.Decode("x", &n, newNop)
	require.NoError(t, err)
	require.Equal(t, "x", src.Name())
}
