package fakes

import (
	"net/http"

	"github.com/fleetkit/fleetkit/testkit/fleet"
)

// Mount points of the fakes under Mux.
const (
	NetBoxPrefix       = "/netbox"
	MaaSPrefix         = "/maas"
	PrometheusPrefix   = "/prometheus"
	AlertmanagerPrefix = "/alertmanager"
	SaltPrefix         = "/salt"
)

// Mux serves every fake over f with default options and credentials
// (DefaultToken, DefaultMaaSAPIKey, DefaultSaltUser/DefaultSaltPassword,
// no Alertmanager token) under its prefix:
//
//	/netbox/api/...                NetBox       (base URL <addr>/netbox)
//	/maas/MAAS/api/2.0/...         MaaS         (base URL <addr>/maas/MAAS)
//	/prometheus/api/v1/query       Prometheus   (base URL <addr>/prometheus)
//	/alertmanager/api/v2/alerts    Alertmanager (base URL <addr>/alertmanager)
//	/salt/login, /salt/            salt-api     (base URL <addr>/salt)
//	/healthz                       200 "ok"
//
// It is what a container fixture runs to stand in for all those systems
// at one address.
func Mux(f *fleet.Fleet) http.Handler {
	mux := http.NewServeMux()
	mount := func(prefix string, h http.Handler) {
		mux.Handle(prefix+"/", http.StripPrefix(prefix, h))
	}
	mount(NetBoxPrefix, NewNetBox(f, NetBoxOptions{}))
	mount(MaaSPrefix, NewMaaS(f, MaaSOptions{}))
	mount(PrometheusPrefix, NewPrometheus(f))
	mount(AlertmanagerPrefix, NewAlertmanager(f, AlertmanagerOptions{}))
	mount(SaltPrefix, NewSalt(f, SaltOptions{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	return mux
}
