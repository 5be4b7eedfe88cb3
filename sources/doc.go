// Package sources assembles the disposition of every server from the
// systems that own pieces of it (inventory, provisioning, monitoring,
// traffic, alerting, configuration management, manual overrides) and keeps
// a disposition.Index up to date with the merged result.
//
// Each system plugs in through the narrow Source interface; the adapters
// live in the sub-packages (file, httpjson, netbox, maas, prometheus,
// alertmanager, saltapi, postgres).
package sources
