// Package maas is a fleetkit source that reads machines from Canonical
// MaaS's 2.0 API (GET /MAAS/api/2.0/machines/), signing requests with
// OAuth 1.0 PLAINTEXT from a MaaS API key as MaaS clients do.
//
// Each machine's status_name becomes the lifecycle state through
// Options.StatusMap (DefaultStatusMap documents the table), a Deployed
// machine whose power is off is down, and its zone, pool, tags and other
// attributes map to fields through Options.Fields.
//
//	src, err := maas.New("maas", maas.Options{
//		URL:    "http://maas.example.com:5240/MAAS",
//		APIKey: apiKey, // consumer:token:secret
//	})
//	obs, err := src.Fetch(ctx)
package maas
