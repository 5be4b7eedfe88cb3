// Package netbox is a fleetkit source that reads servers from NetBox's
// REST API: dcim/devices (bare metal) and virtualization/virtual-machines,
// page by page (limit/offset, following next links), with token auth.
//
// Each device or VM with a name becomes one Observation. Its site,
// region, tenant, role, platform, status, rack, cluster, custom fields and
// tags map to disposition fields through Options.Fields (DefaultFields
// documents fleetkit's NetBox conventions), the status through
// Options.StatusMap (DefaultStatusMap), and tags named "key:value" to
// labels. NetBox nests only a brief site in a device, so the site's time
// zone and region come from one listing of dcim/sites (and of
// dcim/regions for a region's parent) per fetch, made only when the
// mapping uses them.
//
//	src, err := netbox.New("netbox", netbox.Options{
//		URL:   "https://netbox.example.com",
//		Token: token,
//		Filters: map[string][]string{"tenant": {"cdn"}, "exclude": {"config_context"}},
//	})
//	obs, err := src.Fetch(ctx)
package netbox
