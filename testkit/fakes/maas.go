package fakes

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/testkit/fleet"
)

// DefaultMaaSAPIKey is the API key the MaaS fake accepts unless told
// otherwise, and the one Mux uses: "<consumer>:<token>:<secret>".
const DefaultMaaSAPIKey = "fleetkitConsumer0001:fleetkitToken000001:fleetkitSecret0000000000000001"

// MaaSOptions configure the MaaS fake.
type MaaSOptions struct {
	// APIKey is the accepted key; default DefaultMaaSAPIKey.
	APIKey string
}

// MaaS is an http.Handler that speaks Canonical MaaS's 2.0 API over the
// bare-metal nodes of a fleet, read-only:
//
//	GET /MAAS/api/2.0/machines/            every machine, one JSON array
//	GET /MAAS/api/2.0/machines/<system_id>/ one machine
//
// The listing filters on hostname, zone, pool, status and tags (repeated
// values OR, except tags, which must all be present). Requests must carry
// an OAuth 1.0 PLAINTEXT Authorization header made from the API key, as
// MaaS clients send it; otherwise the answer is 401.
//
// A node becomes a machine with hostname the first label of its ID, domain
// the rest, zone its site in lower case ("den1"), pool its role and tags
// its label values and role ("gen10", "tier-1", "edge"); the status is
// MaaSStatus's, and power is off for nodes whose health is down, on
// otherwise. The OS is osystem "custom" with distro_series the node's
// platform.
type MaaS struct {
	Faults
	consumer, token, secret string
	machines                [][]byte
	ids                     []string
	filters                 []map[string][]string
}

// MaaSStatus returns the status name and code the MaaS fake gives a node:
// Deployed (in service), Deploying (provisioning), Rescue mode
// (maintenance), Releasing (drained), Broken (repair), Retired
// (decommissioned) and Ready (repurpose).
func MaaSStatus(n *disposition.Node) (name string, code int) {
	switch n.State {
	case disposition.StateProvisioning:
		return "Deploying", 9
	case disposition.StateMaintenance:
		return "Rescue mode", 16
	case disposition.StateDrained:
		return "Releasing", 12
	case disposition.StateRepair:
		return "Broken", 8
	case disposition.StateDecommissioned:
		return "Retired", 7
	case disposition.StateRepurpose:
		return "Ready", 4
	}
	return "Deployed", 6
}

// NewMaaS returns a MaaS fake serving f.
func NewMaaS(f *fleet.Fleet, opts MaaSOptions) *MaaS {
	if opts.APIKey == "" {
		opts.APIKey = DefaultMaaSAPIKey
	}
	m := &MaaS{}
	parts := strings.SplitN(opts.APIKey, ":", 3)
	for len(parts) < 3 {
		parts = append(parts, "")
	}
	m.consumer, m.token, m.secret = parts[0], parts[1], parts[2]
	zones, pools := map[string]int{}, map[string]int{}
	idOf := func(m map[string]int, k string) int {
		if id, ok := m[k]; ok {
			return id
		}
		m[k] = len(m) + 1
		return m[k]
	}
	for i, n := range f.Nodes {
		if n.Kind != disposition.KindBaremetal {
			continue
		}
		host, domain, _ := strings.Cut(n.ID, ".")
		sysID := systemID(n.ID)
		zone := strings.ToLower(n.Site)
		status, code := MaaSStatus(n)
		power := "on"
		if n.Health == disposition.HealthDown {
			power = "off"
		}
		tags := []string{n.Role}
		for _, k := range slices.Sorted(maps.Keys(n.Labels)) {
			v := n.Labels[k]
			if k == "tier" {
				v = "tier-" + v
			}
			tags = append(tags, v)
		}
		var owner any
		if status != "Ready" && status != "Retired" {
			owner = "fleetkit"
		}
		ip := fmt.Sprintf("10.%d.%d.%d", (i>>16)&0xff, (i>>8)&0xff, i&0xff)
		obj := map[string]any{
			"system_id": sysID, "hostname": host, "description": "", "hardware_uuid": fmt.Sprintf("%032x", fnvHash(n.ID)),
			"domain": map[string]any{"authoritative": true, "ttl": nil, "resource_record_count": 0, "name": domain, "id": 0, "is_default": true,
				"resource_uri": "/MAAS/api/2.0/domains/0/"},
			"fqdn": n.ID, "owner": owner, "owner_data": map[string]any{}, "locked": false,
			"architecture": "amd64/generic", "min_hwe_kernel": "", "hwe_kernel": "", "cpu_count": 64, "cpu_speed": 2900,
			"memory": 262144, "swap_size": nil, "storage": 3840000.0, "status": code, "status_name": status,
			"status_message": "", "status_action": "", "osystem": "custom", "distro_series": n.Platform, "netboot": false,
			"power_type": "ipmi", "power_state": power, "tag_names": tags, "address_ttl": nil,
			"ip_addresses": []string{ip}, "interface_set": []any{},
			"zone":         map[string]any{"name": zone, "description": "", "id": idOf(zones, zone), "resource_uri": "/MAAS/api/2.0/zones/" + zone + "/"},
			"pool":         map[string]any{"name": n.Role, "description": "", "id": idOf(pools, n.Role), "resource_uri": fmt.Sprintf("/MAAS/api/2.0/resourcepool/%d/", idOf(pools, n.Role))},
			"disable_ipv4": false, "node_type": 0, "node_type_name": "Machine", "pod": nil,
			"commissioning_status": 2, "commissioning_status_name": "Passed", "testing_status": 2, "testing_status_name": "Passed",
			"resource_uri": "/MAAS/api/2.0/machines/" + sysID + "/",
		}
		b, _ := json.Marshal(obj) // plain data: cannot fail
		m.machines = append(m.machines, b)
		m.ids = append(m.ids, sysID)
		m.filters = append(m.filters, map[string][]string{
			"hostname": {host, n.ID}, "zone": {zone}, "pool": {n.Role}, "status": {strings.ToLower(status)}, "tags": tags,
		})
	}
	return m
}

func fnvHash(s string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(s))
	return h.Sum64()
}

// systemID derives a MaaS-style six-character system_id from a node ID.
func systemID(id string) string {
	const alphabet = "abcdefghjkmnpqrstwxy3468"
	h := fnvHash(id)
	b := make([]byte, 6)
	for i := range b {
		b[i] = alphabet[h%uint64(len(alphabet))]
		h /= uint64(len(alphabet))
	}
	return string(b)
}

// ServeHTTP implements http.Handler.
func (m *MaaS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m.serve(w, r, m.handle)
}

func (m *MaaS) authorized(r *http.Request) bool {
	h, ok := strings.CutPrefix(r.Header.Get("Authorization"), "OAuth ")
	if !ok {
		return false
	}
	params := map[string]string{}
	for _, kv := range strings.Split(h, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok {
			continue
		}
		v = strings.Trim(v, `"`)
		if dv, err := url.PathUnescape(v); err == nil {
			v = dv
		}
		params[k] = v
	}
	sig := params["oauth_signature"]
	// The header value is percent-encoded once more than the signature.
	if dv, err := url.PathUnescape(sig); err == nil {
		sig = dv
	}
	return params["oauth_signature_method"] == "PLAINTEXT" &&
		params["oauth_consumer_key"] == m.consumer && params["oauth_token"] == m.token &&
		sig == "&"+m.secret && params["oauth_nonce"] != "" && params["oauth_timestamp"] != ""
}

func (m *MaaS) handle(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.Path, "/MAAS/api/2.0/")
	if !ok {
		http.NotFound(w, r)
		return
	}
	if !m.authorized(r) {
		w.Header().Set("WWW-Authenticate", `OAuth realm="OAuth"`)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte("Authorization Error: 'Invalid access token'"))
		return
	}
	if r.Method != http.MethodGet {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	rest = strings.TrimSuffix(rest, "/")
	if id, ok := strings.CutPrefix(rest, "machines/"); ok {
		if i := slices.Index(m.ids, id); i >= 0 {
			writeRaw(w, http.StatusOK, m.machines[i])
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte("No Machine matches the given query."))
		return
	}
	if rest != "machines" {
		http.NotFound(w, r)
		return
	}
	q := r.URL.Query()
	var b bytes.Buffer
	b.WriteByte('[')
	first := true
	for i, f := range m.filters {
		if !maasMatch(q, f) {
			continue
		}
		if !first {
			b.WriteByte(',')
		}
		first = false
		b.Write(m.machines[i])
	}
	b.WriteByte(']')
	writeRaw(w, http.StatusOK, b.Bytes())
}

func maasMatch(q url.Values, f map[string][]string) bool {
	for k, want := range q {
		have, known := f[k]
		if !known {
			continue
		}
		if k == "tags" {
			for _, t := range want {
				if !slices.Contains(have, t) {
					return false
				}
			}
			continue
		}
		if !slices.ContainsFunc(want, func(v string) bool { return slices.Contains(have, v) }) {
			return false
		}
	}
	return true
}
