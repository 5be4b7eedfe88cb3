package fakes

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/testkit/fleet"
)

// DefaultToken is the API token the NetBox fake accepts unless told
// otherwise, and the one Mux uses.
const DefaultToken = "0123456789abcdef0123456789abcdef01234567"

// NetBox page sizes, as NetBox configures them by default.
const (
	NetBoxPaginateCount = 50   // PAGINATE_COUNT: the page size without ?limit
	NetBoxMaxPageSize   = 1000 // MAX_PAGE_SIZE: the largest page served
)

// NetBoxOptions configure the NetBox fake. The zero value is a NetBox 4
// with DefaultToken and NetBox's default page sizes.
type NetBoxOptions struct {
	// Token is the accepted API token; default DefaultToken.
	Token string
	// PaginateCount and MaxPageSize are NetBox's settings of those names;
	// defaults NetBoxPaginateCount and NetBoxMaxPageSize.
	PaginateCount, MaxPageSize int
	// LegacyDeviceRole serves a device's role as "device_role", as NetBox
	// before 3.6 did, instead of "role".
	LegacyDeviceRole bool
}

// NetBox is an http.Handler that speaks NetBox's REST API (version 4) over
// a fleet, read-only:
//
//	GET /api/dcim/devices/                      bare-metal nodes
//	GET /api/virtualization/virtual-machines/   vm and container nodes
//	GET /api/dcim/sites/, /api/dcim/regions/    the fleet's sites and regions
//	GET /api/<list>/<id>/                       one object of those lists
//
// Lists page with limit and offset and link pages with absolute next and
// previous URLs, like NetBox. They filter on name, status, role, site and
// tenant (slugs; repeated values OR); other parameters are ignored.
// Requests need "Authorization: Token <token>" (or Bearer); without it the
// answer is 403, as NetBox gives.
//
// The fleet is modelled the way fleetkit's netbox source expects by
// default: a region per fleet region (slug and name "na-west") holding a
// region per metro (slug "den", name "DEN"); a site per site (name
// "DEN1", slug "den1") in its metro's region with the metro's time zone;
// a role per role, a platform per platform, a cluster per cluster and a
// rack per rack, all named like the node's fields; the node ID as object
// name; tenant "cdn"; a tag "<key>:<value>" (slug "<key>-<value>") per
// label; custom fields release_state, capacity_gbps and kind ("container"
// for container nodes, otherwise null). The lifecycle state is the
// status NetBoxStatus gives. Health, traffic and versions are not in
// NetBox.
type NetBox struct {
	Faults
	opts  NetBoxOptions
	lists map[string]*nbList
}

// nbList is one list endpoint: its objects' JSON with nbBase standing for
// the API's base URL, and the filterable attributes of each.
type nbList struct {
	objs    [][]byte
	ids     []int
	filters []map[string]string
}

// nbBase stands for the scheme, host and mount point in precomputed URLs.
const nbBase = "http://netbox.invalid"

// NetBoxStatus returns the NetBox status value the fake gives a node: the
// inverse of fleetkit's default netbox status map, with "staged" for
// provisioning, "inventory" for a drained device, "paused" for a drained
// VM and "planned" for repurpose.
func NetBoxStatus(n *disposition.Node) string {
	switch n.State {
	case disposition.StateInService:
		return "active"
	case disposition.StateProvisioning:
		return "staged"
	case disposition.StateMaintenance:
		return "offline"
	case disposition.StateDrained:
		if n.Kind == disposition.KindBaremetal {
			return "inventory"
		}
		return "paused"
	case disposition.StateRepair:
		return "failed"
	case disposition.StateDecommissioned:
		return "decommissioning"
	case disposition.StateRepurpose:
		return "planned"
	}
	return "active"
}

// NewNetBox returns a NetBox fake serving f.
func NewNetBox(f *fleet.Fleet, opts NetBoxOptions) *NetBox {
	if opts.Token == "" {
		opts.Token = DefaultToken
	}
	if opts.PaginateCount <= 0 {
		opts.PaginateCount = NetBoxPaginateCount
	}
	if opts.MaxPageSize <= 0 {
		opts.MaxPageSize = NetBoxMaxPageSize
	}
	nb := &NetBox{opts: opts, lists: map[string]*nbList{}}
	nb.build(f)
	return nb
}

type nbRef struct {
	ID          int    `json:"id"`
	URL         string `json:"url"`
	Display     string `json:"display"`
	Name        string `json:"name"`
	Slug        string `json:"slug,omitempty"`
	Description string `json:"description"`
	Depth       *int   `json:"_depth,omitempty"`
}

type nbChoice struct {
	Value string `json:"value"`
	Label string `json:"label"`
}

type nbTag struct {
	ID      int    `json:"id"`
	URL     string `json:"url"`
	Display string `json:"display"`
	Name    string `json:"name"`
	Slug    string `json:"slug"`
	Color   string `json:"color"`
}

type nbIP struct {
	ID      int      `json:"id"`
	URL     string   `json:"url"`
	Display string   `json:"display"`
	Family  nbChoice `json:"family"`
	Address string   `json:"address"`
}

// registry hands out ids and nested references of one object type.
type nbRegistry struct {
	path string
	refs map[string]*nbRef
	keys []string
}

func (g *nbRegistry) ref(key, name, slug string) *nbRef {
	if r, ok := g.refs[key]; ok {
		return r
	}
	id := len(g.keys) + 1
	r := &nbRef{ID: id, URL: fmt.Sprintf("%s/api/%s/%d/", nbBase, g.path, id), Display: name, Name: name, Slug: slug}
	g.refs[key] = r
	g.keys = append(g.keys, key)
	return r
}

func newRegistry(path string) *nbRegistry { return &nbRegistry{path: path, refs: map[string]*nbRef{}} }

func titleWord(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func statusLabel(v string) string { return titleWord(v) }

func (nb *NetBox) build(f *fleet.Fleet) {
	regions := newRegistry("dcim/regions")
	sites := newRegistry("dcim/sites")
	roles := newRegistry("dcim/device-roles")
	platforms := newRegistry("dcim/platforms")
	racks := newRegistry("dcim/racks")
	clusters := newRegistry("virtualization/clusters")
	tenants := newRegistry("tenancy/tenants")
	dtypes := newRegistry("dcim/device-types")
	tags := newRegistry("extras/tags")
	tenant := tenants.ref("cdn", "CDN", "cdn")

	// Regions and sites, in metro order.
	parents := map[string]*nbRef{}
	var siteMetro []*fleet.Metro
	for i := range f.Metros {
		m := &f.Metros[i]
		top := regions.ref(m.Region, m.Region, m.Region)
		parents[m.Code] = top
		regions.ref("metro:"+m.Code, m.Code, strings.ToLower(m.Code))
		for _, s := range m.Sites {
			sites.ref(s, s, strings.ToLower(s))
			siteMetro = append(siteMetro, m)
		}
	}
	depth := func(d int) *int { return &d }
	brief := func(r *nbRef) *nbRef {
		c := *r
		return &c
	}
	regionList := &nbList{}
	for _, key := range regions.keys {
		r := regions.refs[key]
		obj := map[string]any{
			"id": r.ID, "url": r.URL, "display": r.Display, "name": r.Name, "slug": r.Slug,
			"description": "", "tags": []any{}, "custom_fields": map[string]any{},
			"created": "2025-01-01T00:00:00Z", "last_updated": "2025-01-01T00:00:00Z",
		}
		if code, ok := strings.CutPrefix(key, "metro:"); ok {
			p := brief(parents[code])
			p.Depth = depth(0)
			obj["parent"] = p
			obj["_depth"] = 1
		} else {
			obj["parent"] = nil
			obj["_depth"] = 0
		}
		regionList.add(r.ID, obj, map[string]string{"name": r.Name})
	}
	siteList := &nbList{}
	for i, key := range sites.keys {
		s := sites.refs[key]
		m := siteMetro[i]
		reg := brief(regions.ref("metro:"+m.Code, m.Code, strings.ToLower(m.Code)))
		reg.Depth = depth(1)
		siteList.add(s.ID, map[string]any{
			"id": s.ID, "url": s.URL, "display": s.Display, "name": s.Name, "slug": s.Slug,
			"status":    nbChoice{"active", "Active"},
			"region":    reg,
			"group":     nil,
			"tenant":    tenant,
			"facility":  m.City + " " + strings.TrimPrefix(s.Name, m.Code),
			"time_zone": m.Timezone, "description": "", "physical_address": "", "shipping_address": "",
			"latitude": nil, "longitude": nil, "comments": "", "asns": []any{},
			"tags": []any{}, "custom_fields": map[string]any{},
			"created": "2025-01-01T00:00:00Z", "last_updated": "2025-01-01T00:00:00Z",
		}, map[string]string{"name": s.Name, "slug": s.Slug})
	}

	devList, vmList := &nbList{}, &nbList{}
	for i, n := range f.Nodes {
		site := sites.ref(n.Site, n.Site, strings.ToLower(n.Site))
		role := roles.ref(n.Role, titleWord(n.Role), n.Role)
		var platform *nbRef
		if n.Platform != "" {
			platform = platforms.ref(n.Platform, strings.ReplaceAll(titleWord(n.Platform), "-", " "), n.Platform)
		}
		var cluster *nbRef
		if n.Cluster != "" {
			c := *clusters.ref(n.Cluster, n.Cluster, "")
			cluster = &c
		}
		var ntags []nbTag
		for _, k := range slices.Sorted(maps.Keys(n.Labels)) {
			name := k + ":" + n.Labels[k]
			slug := k + "-" + n.Labels[k]
			t := tags.ref(name, name, slug)
			ntags = append(ntags, nbTag{ID: t.ID, URL: t.URL, Display: name, Name: name, Slug: slug, Color: "9e9e9e"})
		}
		if ntags == nil {
			ntags = []nbTag{}
		}
		status := NetBoxStatus(n)
		var kind any
		if n.Kind == disposition.KindContainer {
			kind = "container"
		}
		var release any
		if n.ReleaseState != "" {
			release = n.ReleaseState
		}
		cf := map[string]any{"release_state": release, "capacity_gbps": n.CapacityGbps, "kind": kind}
		ip := fmt.Sprintf("10.%d.%d.%d/32", (i>>16)&0xff, (i>>8)&0xff, i&0xff)
		filt := map[string]string{"name": n.ID, "status": status, "role": n.Role, "site": site.Slug, "tenant": "cdn"}
		common := map[string]any{
			"name": n.ID, "display": n.ID,
			"status": nbChoice{status, statusLabel(status)}, "site": site, "tenant": tenant,
			"platform": platform, "cluster": cluster, "description": "", "comments": "",
			"tags": ntags, "custom_fields": cf, "config_template": nil, "local_context_data": nil,
			"created": "2025-01-01T00:00:00Z", "last_updated": "2025-01-01T00:00:00Z",
			"primary_ip6": nil,
		}
		if n.Kind == disposition.KindBaremetal {
			id := len(devList.objs) + 1
			obj := maps.Clone(common)
			rack := racks.ref(n.Rack, n.Rack, "")
			hw := n.Labels["hw"]
			if hw == "" {
				hw = "generic"
			}
			dt := dtypes.ref(hw, "", "cdn-"+hw)
			obj["id"] = id
			obj["url"] = fmt.Sprintf("%s/api/dcim/devices/%d/", nbBase, id)
			obj["display_url"] = fmt.Sprintf("%s/dcim/devices/%d/", nbBase, id)
			obj["device_type"] = map[string]any{
				"id": dt.ID, "url": dt.URL, "display": "CDN " + hw, "model": "CDN " + hw, "slug": dt.Slug,
				"manufacturer": map[string]any{"id": 1, "url": nbBase + "/api/dcim/manufacturers/1/", "display": "Acme", "name": "Acme", "slug": "acme"},
			}
			if nb.opts.LegacyDeviceRole {
				obj["device_role"] = role
			} else {
				obj["role"] = role
			}
			obj["serial"] = fmt.Sprintf("SN%08d", i+1)
			obj["asset_tag"] = nil
			obj["location"] = nil
			obj["rack"] = map[string]any{"id": rack.ID, "url": rack.URL, "display": rack.Name, "name": rack.Name, "description": ""}
			obj["position"] = float64(1 + i%40)
			obj["face"] = nbChoice{"front", "Front"}
			obj["airflow"] = nil
			obj["parent_device"] = nil
			obj["primary_ip"] = nbIP{ID: i + 1, URL: fmt.Sprintf("%s/api/ipam/ip-addresses/%d/", nbBase, i+1), Display: ip, Family: nbChoice{"4", "IPv4"}, Address: ip}
			obj["primary_ip4"] = obj["primary_ip"]
			obj["oob_ip"] = nil
			obj["virtual_chassis"] = nil
			obj["vc_position"] = nil
			obj["vc_priority"] = nil
			obj["config_context"] = map[string]any{}
			devList.add(id, obj, filt)
			continue
		}
		id := len(vmList.objs) + 1
		obj := maps.Clone(common)
		obj["id"] = id
		obj["url"] = fmt.Sprintf("%s/api/virtualization/virtual-machines/%d/", nbBase, id)
		obj["display_url"] = fmt.Sprintf("%s/virtualization/virtual-machines/%d/", nbBase, id)
		obj["role"] = role
		obj["device"] = nil
		obj["serial"] = ""
		obj["primary_ip"] = nbIP{ID: i + 1, URL: fmt.Sprintf("%s/api/ipam/ip-addresses/%d/", nbBase, i+1), Display: ip, Family: nbChoice{"4", "IPv4"}, Address: ip}
		obj["primary_ip4"] = obj["primary_ip"]
		obj["vcpus"] = 8.0
		obj["memory"] = 16384
		obj["disk"] = 102400
		obj["config_context"] = map[string]any{}
		vmList.add(id, obj, filt)
	}
	nb.lists["dcim/devices"] = devList
	nb.lists["virtualization/virtual-machines"] = vmList
	nb.lists["dcim/sites"] = siteList
	nb.lists["dcim/regions"] = regionList
}

func (l *nbList) add(id int, obj any, filt map[string]string) {
	b, _ := json.Marshal(obj) // plain maps, strings and numbers: cannot fail
	l.objs = append(l.objs, b)
	l.ids = append(l.ids, id)
	l.filters = append(l.filters, filt)
}

var nbListFilters = []string{"name", "status", "role", "site", "tenant"}

// ServeHTTP implements http.Handler.
func (nb *NetBox) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	nb.serve(w, r, nb.handle)
}

func (nb *NetBox) handle(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"detail": fmt.Sprintf("Method \"%s\" not allowed.", r.Method)})
		return
	}
	scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	switch {
	case tok == "" || (scheme != "Token" && scheme != "Bearer"):
		writeJSON(w, http.StatusForbidden, map[string]string{"detail": "Authentication credentials were not provided."})
		return
	case tok != nb.opts.Token:
		writeJSON(w, http.StatusForbidden, map[string]string{"detail": "Invalid token"})
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/api/")
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"detail": "Not found."})
		return
	}
	rest = strings.TrimSuffix(rest, "/")
	base := strings.TrimSuffix(originalURL(r).Scheme+"://"+r.Host+prefix(r), "/")
	if l, ok := nb.lists[rest]; ok {
		nb.serveList(w, r, l, base)
		return
	}
	if i := strings.LastIndexByte(rest, '/'); i > 0 {
		if l, ok := nb.lists[rest[:i]]; ok {
			if id, err := strconv.Atoi(rest[i+1:]); err == nil {
				if j, found := slices.BinarySearch(l.ids, id); found {
					writeRaw(w, http.StatusOK, bytes.ReplaceAll(l.objs[j], []byte(nbBase), []byte(base)))
					return
				}
			}
		}
	}
	writeJSON(w, http.StatusNotFound, map[string]string{"detail": "Not found."})
}

func (nb *NetBox) serveList(w http.ResponseWriter, r *http.Request, l *nbList, base string) {
	q := r.URL.Query()
	limit := nb.opts.PaginateCount
	if v := q.Get("limit"); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n >= 0 {
			limit = n
		}
	}
	if limit == 0 || limit > nb.opts.MaxPageSize {
		limit = nb.opts.MaxPageSize
	}
	offset := 0
	if v := q.Get("offset"); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n >= 0 {
			offset = n
		}
	}
	var match []int
	for i, f := range l.filters {
		ok := true
		for _, k := range nbListFilters {
			if vs, given := q[k]; given && !slices.Contains(vs, f[k]) {
				ok = false
				break
			}
		}
		if ok {
			match = append(match, i)
		}
	}
	count := len(match)
	lo, hi := min(offset, count), min(offset+limit, count)

	link := func(off int) any {
		u := originalURL(r)
		lq := u.Query()
		lq.Set("limit", strconv.Itoa(limit))
		if off <= 0 {
			lq.Del("offset")
		} else {
			lq.Set("offset", strconv.Itoa(off))
		}
		u.RawQuery = lq.Encode()
		return u.String()
	}
	var next, prev any
	if hi < count {
		next = link(hi)
	}
	if offset > 0 {
		prev = link(max(offset-limit, 0))
	}
	head, err := json.Marshal(map[string]any{"count": count, "next": next, "previous": prev})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	var b bytes.Buffer
	b.Write(head[:len(head)-1])
	b.WriteString(`,"results":[`)
	for k, i := range match[lo:hi] {
		if k > 0 {
			b.WriteByte(',')
		}
		b.Write(l.objs[i])
	}
	b.WriteString("]}")
	writeRaw(w, http.StatusOK, bytes.ReplaceAll(b.Bytes(), []byte(nbBase), []byte(base)))
}
