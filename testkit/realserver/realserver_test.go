package realserver_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/fleetkit/fleetkit/testkit/realserver"
)

func TestPostgresAcceptsQueries(t *testing.T) {
	dsn := realserver.Postgres(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	require.NoError(t, err)
	defer conn.Close(ctx)
	var n int
	require.NoError(t, conn.QueryRow(ctx, "select $1::int + 1", 41).Scan(&n))
	require.Equal(t, 42, n)
}

func TestPrometheusIsReady(t *testing.T) {
	addr := realserver.Prometheus(t, "global:\n  scrape_interval: 1s\nscrape_configs: []\n")
	resp, err := http.Get("http://" + addr + "/api/v1/query?query=vector(7)")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
}
