// Package saltapi is a fleetkit source that reads the grains of Salt
// minions through salt-api's rest_cherrypy interface: it logs in
// (POST /login with external auth, then X-Auth-Token), runs grains.items
// on the targeted minions or reads the master's grains cache, and maps
// grains to fields: role, release state, platform (from os and
// osmajorrelease) and kind (from virtual) by default (DefaultGrains).
// It logs in again when the token expires or salt-api refuses it.
//
//	src, err := saltapi.New("salt", saltapi.Options{
//		URL:      "https://salt.example.com:8000",
//		Username: "fleetkit", Password: password, EAuth: "pam",
//		Mode:     saltapi.ModeCache,
//		Grains:   map[string]string{"metro": "fleet:metro"},
//	})
//	obs, err := src.Fetch(ctx)
package saltapi
