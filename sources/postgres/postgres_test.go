package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/sources"
	"github.com/fleetkit/fleetkit/sources/postgres"
	"github.com/fleetkit/fleetkit/testkit/fleet"
	"github.com/fleetkit/fleetkit/testkit/realserver"
)

// database starts (or borrows) a PostgreSQL server and gives the test a
// schema of its own, dropped at the end, with a nodes table holding f.
func database(t *testing.T, f *fleet.Fleet) (dsn, schema string, conn *pgx.Conn) {
	t.Helper()
	dsn = realserver.Postgres(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close(context.Background()) })
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema = "fleetkit_test_" + hex.EncodeToString(b[:])
	_, err = conn.Exec(ctx, "create schema "+schema)
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = conn.Exec(context.Background(), "drop schema "+schema+" cascade") })
	_, err = conn.Exec(ctx, `create table `+schema+`.nodes (
		id text primary key, kind text, region text, metro text, site text, cluster text, rack text,
		timezone text, role text, platform text, state text, release_state text, health text,
		traffic_gbps numeric(10,2), capacity_gbps double precision, labels jsonb, versions jsonb,
		updated timestamptz, serial uuid)`)
	require.NoError(t, err)
	rows := make([][]any, len(f.Nodes))
	for i, n := range f.Nodes {
		var health any
		if n.Health != disposition.HealthUnknown {
			health = n.Health.String()
		}
		var versions any
		if n.Versions != nil {
			versions = n.Versions
		}
		var release any
		if n.ReleaseState != "" {
			release = n.ReleaseState
		}
		rows[i] = []any{n.ID, n.Kind.String(), n.Region, n.Metro, n.Site, n.Cluster, n.Rack, n.Timezone,
			n.Role, n.Platform, n.State.String(), release, health, n.TrafficGbps, n.CapacityGbps,
			n.Labels, versions, f.Config.Start, fmt.Sprintf("00000000-0000-4000-8000-%012d", i)}
	}
	cols := []string{"id", "kind", "region", "metro", "site", "cluster", "rack", "timezone", "role", "platform",
		"state", "release_state", "health", "traffic_gbps", "capacity_gbps", "labels", "versions", "updated", "serial"}
	n, err := conn.CopyFrom(ctx, pgx.Identifier{schema, "nodes"}, cols, pgx.CopyFromRows(rows))
	require.NoError(t, err)
	require.Equal(t, int64(len(f.Nodes)), n)
	return dsn, schema, conn
}

func TestFetchMatchesFleet(t *testing.T) {
	f, err := fleet.Generate(fleet.Config{Size: 300, Seed: 13})
	require.NoError(t, err)
	dsn, schema, _ := database(t, f)
	s, err := postgres.New("cmdb", postgres.Options{
		DSN:     dsn,
		Query:   "select * from " + schema + ".nodes order by id",
		Columns: map[string]string{"updated": "", "serial": "label.serial", "versions": postgres.TargetVersions, "labels": postgres.TargetLabels},
	})
	require.NoError(t, err)
	obs, err := s.Fetch(context.Background())
	require.NoError(t, err)
	require.Len(t, obs, len(f.Nodes))
	unknownHealth := 0
	for i, n := range f.Nodes {
		o := obs[i]
		require.Equal(t, n.ID, o.ID)
		v := o.Values
		require.Equal(t, []any{n.Kind, n.Region, n.Metro, n.Site, n.Cluster, n.Rack, n.Timezone, n.Role, n.Platform, n.State, n.ReleaseState, n.Health},
			[]any{v.Kind, v.Region, v.Metro, v.Site, v.Cluster, v.Rack, v.Timezone, v.Role, v.Platform, v.State, v.ReleaseState, v.Health}, n.ID)
		require.InDelta(t, n.TrafficGbps, v.TrafficGbps, 1e-9, n.ID)
		require.Equal(t, n.CapacityGbps, v.CapacityGbps, n.ID)
		require.Equal(t, fmt.Sprintf("00000000-0000-4000-8000-%012d", i), v.Labels["serial"])
		delete(v.Labels, "serial")
		require.Equal(t, n.Labels, v.Labels)
		if len(n.Versions) == 0 {
			require.False(t, o.Known.Has(disposition.FieldVersions), "NULL versions are unknown")
		} else {
			require.Equal(t, n.Versions, v.Versions)
		}
		if n.Health == disposition.HealthUnknown {
			unknownHealth++
			require.False(t, o.Known.Has(disposition.FieldHealth), "NULL health is unknown, not \"unknown\"")
		}
	}
	require.NotZero(t, unknownHealth, "no NULL health in the data: the test would not cover NULLs")
}

func TestColumnsMappingAndRows(t *testing.T) {
	f, err := fleet.Generate(fleet.Config{Size: 20, Seed: 13})
	require.NoError(t, err)
	dsn, _, conn := database(t, f)
	ctx := context.Background()
	q := func(sql string, opts postgres.Options) ([]sources.Observation, error) {
		t.Helper()
		opts.DSN, opts.Query = dsn, sql
		s, err := postgres.New("pg", opts)
		require.NoError(t, err)
		return s.Fetch(ctx)
	}

	obs, err := q(`select * from (values
		('a', 'DEN1', 'in-service', null::text),
		(null, 'X', 'repair', null),
		('', 'Y', 'repair', null),
		('a', null, 'drained', '3.2.0'),
		('b', 'LHR1', null, null)) as t(host, dc, st, app)`,
		postgres.Options{IDColumn: "host", Columns: map[string]string{"dc": "site", "st": "state", "app": "version.cdn-app"}})
	require.NoError(t, err)
	require.Len(t, obs, 2, "rows without ID are skipped, rows of one ID merged")
	require.Equal(t, "a", obs[0].ID)
	require.Equal(t, "DEN1", obs[0].Values.Site, "a later NULL does not erase")
	require.Equal(t, disposition.StateDrained, obs[0].Values.State, "later rows win")
	require.Equal(t, map[string]string{"cdn-app": "3.2.0"}, obs[0].Values.Versions)
	require.False(t, obs[1].Known.Has(disposition.FieldState))

	_, err = q(`select 'a' as name, 'DEN' as metro`, postgres.Options{})
	require.ErrorIs(t, err, postgres.ErrColumns)
	require.ErrorContains(t, err, `no ID column "id"`)

	_, err = q(`select 'a' as id, 'DEN' as dc`, postgres.Options{})
	require.ErrorIs(t, err, postgres.ErrColumns)
	require.ErrorContains(t, err, `column "dc"`)

	_, err = q(`select 'a' as id, 'serving' as state`, postgres.Options{})
	require.ErrorContains(t, err, `postgres: row 1: column "state" (state)`)

	_, err = q(`select 'a' as id, -1.5 as traffic_gbps`, postgres.Options{})
	require.ErrorContains(t, err, `column "traffic_gbps"`)

	_, err = q(`select 'a' as id, '{"x": 1}'::jsonb as metro`, postgres.Options{})
	require.ErrorContains(t, err, "JSON object")

	_, err = q(`select 'a' as id from nowhere`, postgres.Options{})
	require.ErrorContains(t, err, "postgres: query:")

	_, err = q(`select generate_series(1, 10)::text as id`, postgres.Options{MaxRows: 5})
	require.ErrorContains(t, err, "more than 5 rows")

	// A caller's own connection.
	s, err := postgres.New("pg", postgres.Options{Query: `select 'z' as id, 42 as capacity_gbps`}, postgres.WithQuerier(conn))
	require.NoError(t, err)
	obs, err = s.Fetch(ctx)
	require.NoError(t, err)
	require.Equal(t, 42.0, obs[0].Values.CapacityGbps)
}

func TestConnectFailure(t *testing.T) {
	s, err := postgres.New("pg", postgres.Options{
		DSN: "postgres://nobody@127.0.0.1:1/none?sslmode=disable&connect_timeout=2", Query: "select 1 as id",
		Timeout: 5 * time.Second,
	})
	require.NoError(t, err)
	_, err = s.Fetch(context.Background())
	require.ErrorContains(t, err, "postgres: connect:")
}

func TestNewValidates(t *testing.T) {
	ok := postgres.Options{DSN: "postgres://u@h/db", Query: "select 1 as id"}
	cases := []struct {
		field string
		edit  func(*postgres.Options)
	}{
		{"dsn", func(o *postgres.Options) { o.DSN = "" }},
		{"dsn", func(o *postgres.Options) { o.DSN = "postgres://u@h:notaport/db" }},
		{"query", func(o *postgres.Options) { o.Query = " " }},
		{"columns", func(o *postgres.Options) { o.Columns = map[string]string{"dc": "datacenter"} }},
		{"columns", func(o *postgres.Options) { o.Columns = map[string]string{"id": "metro"} }},
		{"timeout", func(o *postgres.Options) { o.Timeout = -1 }},
		{"max_rows", func(o *postgres.Options) { o.MaxRows = -1 }},
	}
	for _, tc := range cases {
		o := ok
		tc.edit(&o)
		_, err := postgres.New("p", o)
		var ce *sources.ConfigError
		require.ErrorAs(t, err, &ce, tc.field)
		require.Equal(t, tc.field, ce.Path, err.Error())
	}
}

// ExampleNew reads nodes from an inventory table whose columns are named
// differently from the disposition's fields.
func ExampleNew() {
	src, err := postgres.New("cmdb", postgres.Options{
		DSN:      "postgres://fleetkit@cmdb.example.com:5432/inventory?sslmode=verify-full",
		Query:    "select hostname, dc, lifecycle, uplink_gbps, tags from servers where retired_at is null",
		IDColumn: "hostname",
		Columns: map[string]string{
			"dc": "site", "lifecycle": "state", "uplink_gbps": "capacity_gbps", "tags": postgres.TargetLabels,
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(src.Name())
	// Output: cmdb
}
