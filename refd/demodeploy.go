package refd

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"os"
	"slices"
	"sync"

	"github.com/fleetkit/fleetkit/rollout"
	"github.com/fleetkit/fleetkit/sources"
)

// demoDeploys is the demo's simulated deployer and, as a source, what it
// deployed: each deploy sets the component's version of the servers it
// did not fail, and the source reports those versions, so the index (and
// the planner, which skips servers already at a version) sees them. The
// versions are kept in a file, so they survive a restart as the runner's
// log does.
//
// A deploy fails a server when a hash of the seed, the idempotency key
// and the server falls under the failure rate: a repeated key gives the
// same results, which is the idempotency rollout.Deployer asks for.
type demoDeploys struct {
	path string
	seed uint64
	rate float64

	mu       sync.Mutex
	versions map[string]map[string]string // server -> component -> version
	obs      []sources.Observation        // what Fetch returns; nil when stale
}

var (
	_ rollout.Deployer = (*demoDeploys)(nil)
	_ sources.Source   = (*demoDeploys)(nil)
)

func newDemoDeploys(path string, seed uint64, rate float64) (*demoDeploys, error) {
	d := &demoDeploys{path: path, seed: seed, rate: rate, versions: map[string]map[string]string{}}
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return d, nil
	case err != nil:
		return nil, fmt.Errorf("refd: demo deploys: %w", err)
	}
	if err := json.Unmarshal(b, &d.versions); err != nil {
		return nil, fmt.Errorf("refd: %s: %v (delete it to forget the demo's deploys)", path, err)
	}
	if d.versions == nil {
		d.versions = map[string]map[string]string{}
	}
	return d, nil
}

// Name implements sources.Source.
func (d *demoDeploys) Name() string { return DemoDeploysSource }

// Fetch implements sources.Source: the deployed versions, by server. It
// returns the same slice until a deploy changes it.
func (d *demoDeploys) Fetch(ctx context.Context) ([]sources.Observation, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.obs != nil {
		return d.obs, nil
	}
	ids := make([]string, 0, len(d.versions))
	for id := range d.versions {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	obs := make([]sources.Observation, 0, len(ids))
	for _, id := range ids {
		o := sources.Observe(id)
		for c, v := range d.versions[id] {
			o.Version(c, v)
		}
		obs = append(obs, *o)
	}
	d.obs = obs
	return obs, nil
}

// fails reports whether a forward deploy fails server under key.
func (d *demoDeploys) fails(key, server string) bool {
	if d.rate <= 0 {
		return false
	}
	h := fnv.New64a()
	var seed [8]byte
	binary.LittleEndian.PutUint64(seed[:], d.seed)
	h.Write(seed[:])
	io.WriteString(h, key)
	h.Write([]byte{0})
	io.WriteString(h, server)
	// FNV's high bits barely depend on its last bytes: mix them
	// (splitmix64's finaliser) before reading a fraction off the top.
	z := h.Sum64()
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	z ^= z >> 31
	return float64(z>>11)/(1<<53) < d.rate
}

// Deploy implements rollout.Deployer. A rollback to no version ("") takes
// the component off the server, so the inventory's version shows again.
func (d *demoDeploys) Deploy(ctx context.Context, req rollout.DeployRequest) ([]rollout.ServerResult, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	res := make([]rollout.ServerResult, len(req.Servers))
	d.mu.Lock()
	defer d.mu.Unlock()
	for i, s := range req.Servers {
		res[i] = rollout.ServerResult{Server: s, OK: true}
		if !req.Rollback && d.fails(req.IdempotencyKey, s) {
			res[i] = rollout.ServerResult{Server: s, Error: "simulated deploy failure"}
			continue
		}
		if req.Component == "" {
			continue
		}
		vs := d.versions[s]
		if req.Version == "" {
			delete(vs, req.Component)
			if len(vs) == 0 {
				delete(d.versions, s)
			}
			continue
		}
		if vs == nil {
			vs = map[string]string{}
			d.versions[s] = vs
		}
		vs[req.Component] = req.Version
	}
	d.obs = nil
	if req.Component != "" {
		b, err := json.Marshal(d.versions)
		if err != nil {
			return nil, err
		}
		if err := writeFileAtomic(d.path, func(w io.Writer) error { _, err := w.Write(b); return err }); err != nil {
			return nil, fmt.Errorf("refd: demo deploys: %w", err)
		}
	}
	return res, nil
}
