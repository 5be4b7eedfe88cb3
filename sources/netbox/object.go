package netbox

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
)

// nested is NetBox's brief representation of a related object, as it
// appears inside another: {id, url, display, name, slug, ...}. Racks and
// clusters have no slug; device types have a model instead of a name.
type nested struct {
	ID      int    `json:"id"`
	Name    string `json:"name"`
	Slug    string `json:"slug"`
	Display string `json:"display"`
	Model   string `json:"model"`
}

// choice is a NetBox choice field: {value, label}.
type choice struct {
	Value string `json:"value"`
	Label string `json:"label"`
}

type tag struct {
	Name string `json:"name"`
	Slug string `json:"slug"`
}

// object is a device or a virtual machine.
type object struct {
	ID           int                        `json:"id"`
	Name         *string                    `json:"name"`
	Serial       string                     `json:"serial"`
	AssetTag     *string                    `json:"asset_tag"`
	Status       *choice                    `json:"status"`
	Site         *nested                    `json:"site"`
	Role         *nested                    `json:"role"`
	DeviceRole   *nested                    `json:"device_role"` // NetBox < 4.0
	Tenant       *nested                    `json:"tenant"`
	Platform     *nested                    `json:"platform"`
	DeviceType   *nested                    `json:"device_type"`
	Rack         *nested                    `json:"rack"`
	Location     *nested                    `json:"location"`
	Cluster      *nested                    `json:"cluster"`
	PrimaryIP4   *struct{ Address string }  `json:"primary_ip4"`
	Tags         []tag                      `json:"tags"`
	CustomFields map[string]json.RawMessage `json:"custom_fields"`
}

// site is an entry of dcim/sites.
type site struct {
	ID       int     `json:"id"`
	Name     string  `json:"name"`
	Slug     string  `json:"slug"`
	Facility string  `json:"facility"`
	TimeZone *string `json:"time_zone"`
	Region   *nested `json:"region"`
	Group    *nested `json:"group"`
}

// region is an entry of dcim/regions.
type region struct {
	ID     int     `json:"id"`
	Name   string  `json:"name"`
	Slug   string  `json:"slug"`
	Parent *nested `json:"parent"`
}

// tree holds the sites and regions of one fetch, by id.
type tree struct {
	sites   map[int]*site
	regions map[int]*region
}

func nameOf(n *nested) (string, bool) {
	if n == nil {
		return "", false
	}
	return n.Name, true
}

func slugOf(n *nested) (string, bool) {
	if n == nil {
		return "", false
	}
	return n.Slug, true
}

// attr returns the value of a named attribute of o, and whether o has it.
func (o *object) attr(name string, t *tree) (string, bool) {
	switch name {
	case "name":
		if o.Name == nil {
			return "", false
		}
		return *o.Name, true
	case "id":
		return strconv.Itoa(o.ID), true
	case "serial":
		return o.Serial, o.Serial != ""
	case "asset_tag":
		if o.AssetTag == nil {
			return "", false
		}
		return *o.AssetTag, true
	case "status":
		if o.Status == nil {
			return "", false
		}
		return o.Status.Value, true
	case "status.label":
		if o.Status == nil {
			return "", false
		}
		return o.Status.Label, true
	case "primary_ip4":
		if o.PrimaryIP4 == nil {
			return "", false
		}
		return o.PrimaryIP4.Address, true
	case "site.name":
		return nameOf(o.Site)
	case "site.slug":
		return slugOf(o.Site)
	case "tenant.name":
		return nameOf(o.Tenant)
	case "tenant.slug":
		return slugOf(o.Tenant)
	case "role.name", "role.slug":
		r := o.Role
		if r == nil {
			r = o.DeviceRole
		}
		if name == "role.name" {
			return nameOf(r)
		}
		return slugOf(r)
	case "platform.name":
		return nameOf(o.Platform)
	case "platform.slug":
		return slugOf(o.Platform)
	case "device_type.model":
		if o.DeviceType == nil {
			return "", false
		}
		return o.DeviceType.Model, true
	case "device_type.slug":
		return slugOf(o.DeviceType)
	case "rack.name":
		return nameOf(o.Rack)
	case "location.name":
		return nameOf(o.Location)
	case "location.slug":
		return slugOf(o.Location)
	case "cluster.name":
		return nameOf(o.Cluster)
	}
	if k, ok := strings.CutPrefix(name, "cf."); ok {
		return customField(o.CustomFields[k])
	}
	if k, ok := strings.CutPrefix(name, "tag."); ok {
		for _, tg := range o.Tags {
			if tg.Slug == k {
				return "true", true
			}
		}
		return "", false
	}
	// Attributes of the site's full record.
	if o.Site == nil || t.sites == nil {
		return "", false
	}
	st := t.sites[o.Site.ID]
	if st == nil {
		return "", false
	}
	switch name {
	case "site.time_zone":
		if st.TimeZone == nil {
			return "", false
		}
		return *st.TimeZone, true
	case "site.facility":
		return st.Facility, st.Facility != ""
	case "site_group.name":
		return nameOf(st.Group)
	case "site_group.slug":
		return slugOf(st.Group)
	case "region.name":
		return nameOf(st.Region)
	case "region.slug":
		return slugOf(st.Region)
	}
	if st.Region == nil || t.regions == nil {
		return "", false
	}
	r := t.regions[st.Region.ID]
	if r == nil {
		return "", false
	}
	switch name {
	case "region.parent.name":
		return nameOf(r.Parent)
	case "region.parent.slug":
		return slugOf(r.Parent)
	}
	return "", false
}

// customField renders a custom field's JSON value as text: strings as
// they are, numbers and booleans in their JSON form, related objects by
// slug, name or display (the first present), lists joined with commas.
// Null and absent fields are not present.
func customField(raw json.RawMessage) (string, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", false
	}
	switch raw[0] {
	case '"':
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return "", false
		}
		return s, true
	case '{':
		var n nested
		if json.Unmarshal(raw, &n) != nil {
			return "", false
		}
		for _, v := range [...]string{n.Slug, n.Name, n.Display} {
			if v != "" {
				return v, true
			}
		}
		return "", false
	case '[':
		var items []json.RawMessage
		if json.Unmarshal(raw, &items) != nil {
			return "", false
		}
		parts := make([]string, 0, len(items))
		for _, it := range items {
			if v, ok := customField(it); ok {
				parts = append(parts, v)
			}
		}
		return strings.Join(parts, ","), len(parts) > 0
	}
	if !json.Valid(raw) {
		return "", false
	}
	return string(raw), true
}
