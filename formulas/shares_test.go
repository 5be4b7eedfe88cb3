package formulas_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/formulas"
)

func TestCheckShares(t *testing.T) {
	ctl, err := formulas.ParseFile("testdata/control.yaml")
	require.NoError(t, err)
	snap := snapshotOf(t, map[[2]string]int{
		{"edge", "ga"}: 70, {"dns", "ga"}: 6, {"edge", "nrt"}: 14, {"edge", "trial"}: 10,
	})
	got, err := ctl.CheckShares(snap, disposition.Query{}, 0.02)
	require.NoError(t, err)
	require.Equal(t, []formulas.ShareCheck{
		{State: "ga", Want: 0.75, Got: 0.76, Servers: 76, OK: true},
		{State: "nrt", Want: 0.20, Got: 0.14, Servers: 14, OK: false},
		{State: "trial", Want: 0.05, Got: 0.10, Servers: 10, OK: false},
	}, got)

	edge, err := ctl.CheckShares(snap, disposition.MustParseQuery("role=edge"), 0.5)
	require.NoError(t, err)
	require.InDelta(t, 70.0/94, edge[0].Got, 1e-9)
}
