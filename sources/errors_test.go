package sources_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fleetkit/fleetkit/sources"
)

func TestStatusErrorMatchesUnauthorizedOnlyFor401And403(t *testing.T) {
	for code, want := range map[int]bool{401: true, 403: true, 404: false, 500: false} {
		err := fmt.Errorf("netbox: devices page 2: %w", &sources.StatusError{StatusCode: code, Body: "x"})
		require.Equal(t, want, errors.Is(err, sources.ErrUnauthorized), "status %d", code)
		var se *sources.StatusError
		require.ErrorAs(t, err, &se)
		require.Equal(t, code, se.StatusCode)
	}
	require.Equal(t, "status 500: boom", (&sources.StatusError{StatusCode: 500, Body: "boom"}).Error())
}
