// Package fakes provides http.Handlers that speak the APIs of the systems
// fleetkit's sources read (NetBox, Canonical MaaS, Prometheus,
// Alertmanager and salt-api) over a generated fleet, closely enough that
// the real adapters cannot tell them from the real thing. Each fake can be
// made to fail, stall or answer garbage on chosen requests (Fault).
//
//	f, _ := fleet.Generate(fleet.Config{Size: 200, Seed: 1})
//	srv := httptest.NewServer(fakes.NewNetBox(f, fakes.NetBoxOptions{}))
//	defer srv.Close()
//
// Mux serves all of them under one address, for containers and demos.
package fakes
