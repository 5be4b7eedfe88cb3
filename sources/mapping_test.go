package sources_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/sources"
)

func TestMergeFieldMap(t *testing.T) {
	defaults := map[string]string{"metro": "site.name", "rack": "rack.name", "label.tier": "cf.tier"}
	got, err := sources.MergeFieldMap(defaults, map[string]string{
		"rack":            "",          // dropped
		"metro":           "site.slug", // replaced
		"version.cdn-app": "cf.app",    // added
	})
	require.NoError(t, err)
	require.Equal(t, []sources.FieldMapping{
		{Target: "label.tier", Field: disposition.FieldLabels, Key: "tier", Attr: "cf.tier"},
		{Target: "metro", Field: disposition.FieldMetro, Attr: "site.slug"},
		{Target: "version.cdn-app", Field: disposition.FieldVersions, Key: "cdn-app", Attr: "cf.app"},
	}, got)
	require.Equal(t, "site.name", defaults["metro"], "the defaults are not changed")

	_, err = sources.MergeFieldMap(defaults, map[string]string{"colour": "x"})
	require.ErrorContains(t, err, "colour")
	_, err = sources.MergeFieldMap(nil, map[string]string{"label.": "x"})
	require.ErrorContains(t, err, "empty key")
	got, err = sources.MergeFieldMap(nil, nil)
	require.NoError(t, err)
	require.Empty(t, got)
}

func TestParseStateMap(t *testing.T) {
	got, err := sources.ParseStateMap(
		map[string]string{"active": "in-service", "failed": "repair"},
		map[string]string{"failed": "maintenance", "staged": "provisioning"},
	)
	require.NoError(t, err)
	require.Equal(t, map[string]disposition.State{
		"active": disposition.StateInService, "failed": disposition.StateMaintenance, "staged": disposition.StateProvisioning,
	}, got)
	_, err = sources.ParseStateMap(map[string]string{"active": "in-service"}, map[string]string{"odd": "sideways"})
	require.ErrorContains(t, err, "odd")
}
