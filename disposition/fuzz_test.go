package disposition

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// bytesReader hands out the fuzzer's bytes, then zeros.
type bytesReader []byte

func (r *bytesReader) next() int {
	if len(*r) == 0 {
		return 0
	}
	b := (*r)[0]
	*r = (*r)[1:]
	return int(b)
}

func (r *bytesReader) pick(xs []string) string { return xs[r.next()%len(xs)] }

// subset returns the members of xs a byte's bits select, at least one.
func (r *bytesReader) subset(xs []string) []string {
	bits := r.next()
	var out []string
	for i, x := range xs {
		if bits&(1<<i) != 0 && x != "" {
			out = append(out, x)
		}
	}
	if len(out) == 0 {
		out = append(out, xs[0])
	}
	return out
}

func (r *bytesReader) node() *Node {
	n := &Node{
		ID:           fmt.Sprintf("h%02d", r.next()%24),
		Kind:         Kind(r.next() % 4),
		Metro:        r.pick(poolMetros),
		Cluster:      r.pick(poolClusters),
		Role:         r.pick(poolRoles),
		State:        State(r.next() % int(StateDecommissioned+1)),
		ReleaseState: r.pick(poolRelease),
		Health:       Health(r.next() % 4),
		TrafficGbps:  float64(r.next() % 3),
	}
	if x := r.next(); x%3 > 0 {
		n.Versions = map[string]string{"cdn-app": poolVersions[x%len(poolVersions)]}
	}
	if x := r.next(); x%3 > 0 {
		n.Labels = map[string]string{"tier": poolLabelVal[x%len(poolLabelVal)]}
	}
	return n
}

func (r *bytesReader) query() Query {
	var q Query
	for range r.next() % 4 {
		var t Term
		switch r.next() % 8 {
		case 0:
			t = Term{Field: "metro", Values: r.subset(poolMetros)}
		case 1:
			t = Term{Field: "cluster", Values: r.subset(poolClusters)}
		case 2:
			t = Term{Field: "role", Values: r.subset(poolRoles)}
		case 3:
			t = Term{Field: "health", Values: r.subset(healthNames)}
		case 4:
			t = Term{Field: "state", Values: r.subset(stateNames[1:])}
		case 5:
			t = Term{Field: "label.tier", Values: r.subset(poolLabelVal)}
		case 6:
			t = Term{Field: "version.cdn-app", Values: r.subset(poolVersions)}
		case 7:
			t = Term{Field: "id", Values: []string{fmt.Sprintf("h%02d", r.next()%24)}}
		}
		if r.next()%2 == 1 {
			t.Op = Ne
		}
		q.Terms = append(q.Terms, t)
	}
	return q
}

// FuzzIndexAgainstModel reads a stream of upserts, deletes and commits
// from the fuzzer's bytes, applies each batch to an index and to a map,
// and checks after every commit that contents, Get and a query agree. A
// batch naming a node twice must be rejected whole, leaving the index as
// it was.
func FuzzIndexAgainstModel(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 1, 2, 1, 2, 3, 1, 3, 1, 0, 3, 2})
	f.Add([]byte{0, 5, 1, 1, 1, 1, 1, 1, 1, 1, 1, 3, 2, 5, 3, 0, 5, 2, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 5, 1, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytesReader(data)
		ix := NewIndex()
		model := map[string]*Node{}
		var b Batch
		commit := func() {
			_, err := ix.Apply(context.Background(), b)
			seen := map[string]bool{}
			dup := false
			for _, n := range b.Upserts {
				dup = dup || seen[n.ID]
				seen[n.ID] = true
			}
			for _, id := range b.Deletes {
				dup = dup || seen[id]
				seen[id] = true
			}
			switch {
			case dup && !errors.Is(err, ErrDuplicateID):
				t.Fatalf("batch with a duplicate ID: err %v", err)
			case !dup && err != nil:
				t.Fatalf("apply: %v", err)
			case !dup:
				applyModel(model, b)
			}
			b = Batch{}
			snap := ix.Snapshot()
			want := sortedModel(model)
			all, _ := snap.Query(Query{})
			if !slices.EqualFunc(want, all, (*Node).Equal) {
				t.Fatalf("index differs from model:\n%s", cmp.Diff(want, all, equateNodes))
			}
			for _, n := range want {
				if got, ok := snap.Get(n.ID); !ok || !got.Equal(n) {
					t.Fatalf("Get(%s) = %v, %v", n.ID, got, ok)
				}
			}
			q := r.query()
			got, err := snap.Query(q)
			if err != nil {
				t.Fatalf("query %q: %v", q, err)
			}
			if d := cmp.Diff(ids(referenceQuery(want, q)), ids(got)); d != "" {
				t.Fatalf("query %q (-want +got):\n%s", q, d)
			}
		}
		for len(r) > 0 {
			switch r.next() % 4 {
			case 0, 1:
				b.Upserts = append(b.Upserts, r.node())
			case 2:
				b.Deletes = append(b.Deletes, fmt.Sprintf("h%02d", r.next()%24))
			case 3:
				commit()
			}
		}
		commit()
	})
}
