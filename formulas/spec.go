package formulas

import (
	"fmt"
	"strings"

	"github.com/Masterminds/semver/v3"
)

// SpecKind says how a version spec names a commit.
type SpecKind uint8

// The kinds of version spec.
const (
	// SpecNone: the role or state does not get the formula.
	SpecNone SpecKind = iota
	// SpecTag: an exact tag, e.g. v1.4.2 or release-2024-05.
	SpecTag
	// SpecCommit: a commit id, full or abbreviated.
	SpecCommit
	// SpecBranch: the head of a branch at resolution time; needs Unpinned.
	SpecBranch
	// SpecConstraint: a semver constraint (~3.1, >=1.4 <2) resolved to the
	// highest matching tag.
	SpecConstraint
)

var specKindNames = [...]string{"none", "tag", "commit", "branch", "constraint"}

// String returns the kind's name as the long form of a version writes it
// (tag, commit, branch, constraint) or "none".
func (k SpecKind) String() string {
	if int(k) < len(specKindNames) {
		return specKindNames[k]
	}
	return fmt.Sprintf("SpecKind(%d)", k)
}

// Spec is a version of a formula as the control file asks for it.
type Spec struct {
	Kind  SpecKind `json:"kind"`
	Value string   `json:"value,omitempty"` // tag, commit, branch or constraint text
	// Unpinned marks a branch as deliberately floating: each lock refresh
	// moves it to the branch head.
	Unpinned bool `json:"unpinned,omitempty"`
}

// String returns the canonical form of s, "kind:value" ("tag:v1.4.2",
// "constraint:~3.1", "branch:main", "none"). Lock files record it, and two
// specs are the same request exactly when their canonical forms are equal.
func (s Spec) String() string {
	if s.Kind == SpecNone {
		return "none"
	}
	return s.Kind.String() + ":" + s.Value
}

// ParseSpec parses the short form of a version as written in the control
// file:
//
//   - "none": the formula is not given;
//   - 40 or 64 hexadecimal digits: a commit;
//   - a full semantic version with an optional "v" (v1.5.0-rc.1): that exact
//     tag;
//   - text starting with one of ~ ^ < > = ! * or containing a space, comma or
//     "||", or a partial version (1, 1.4, 1.x): a semver constraint;
//   - anything else that is a valid tag name: an exact tag.
//
// Branches have no short form: write {branch: main, unpinned: true}.
//
// A constraint resolves to the highest tag that is a semantic version
// (with or without a leading "v") and satisfies it, with the rules of
// github.com/Masterminds/semver/v3: pre-releases match only a constraint
// that names a pre-release, and tags that are not versions are ignored.
func ParseSpec(s string) (Spec, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return Spec{}, fmt.Errorf("empty version")
	case s == "none":
		return Spec{Kind: SpecNone}, nil
	case isHex(s) && (len(s) == 40 || len(s) == 64):
		return Spec{Kind: SpecCommit, Value: strings.ToLower(s)}, nil
	}
	if _, err := semver.StrictNewVersion(strings.TrimPrefix(s, "v")); err == nil {
		return Spec{Kind: SpecTag, Value: s}, nil
	}
	if looksLikeConstraint(s) {
		if _, err := semver.NewConstraint(s); err != nil {
			return Spec{}, fmt.Errorf("bad semver constraint %q: %v", s, err)
		}
		return Spec{Kind: SpecConstraint, Value: s}, nil
	}
	if err := checkRefName(s); err != nil {
		return Spec{}, fmt.Errorf("%q is neither a version, a constraint nor a tag name: %v", s, err)
	}
	return Spec{Kind: SpecTag, Value: s}, nil
}

func looksLikeConstraint(s string) bool {
	if strings.ContainsAny(s[:1], "~^<>=!*") || strings.ContainsAny(s, " ,") || strings.Contains(s, "||") {
		return true
	}
	// Partial versions: 1, 1.4, v1.4, 1.x, 1.4.*
	t := strings.TrimPrefix(s, "v")
	parts := strings.Split(t, ".")
	if len(parts) > 3 {
		return false
	}
	for _, p := range parts {
		if p == "x" || p == "X" || p == "*" {
			continue
		}
		if p == "" || strings.Trim(p, "0123456789") != "" {
			return false
		}
	}
	return true
}

func isHex(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// checkRefName applies the parts of git's ref name rules that matter for
// tags and branches written by hand.
func checkRefName(s string) error {
	switch {
	case s == "" || s == "@":
		return fmt.Errorf("empty name")
	case len(s) > 255:
		return fmt.Errorf("name longer than 255 bytes")
	case s[0] == '-' || s[0] == '/' || s[0] == '.':
		return fmt.Errorf("name starts with %q", s[0])
	case strings.HasSuffix(s, "/") || strings.HasSuffix(s, ".") || strings.HasSuffix(s, ".lock"):
		return fmt.Errorf("name has a forbidden ending")
	case strings.Contains(s, "..") || strings.Contains(s, "@{") || strings.Contains(s, "//") || strings.Contains(s, "/."):
		return fmt.Errorf("name contains a forbidden sequence")
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == 0x7f || strings.IndexByte(" ~^:?*[\\", c) >= 0 {
			return fmt.Errorf("name contains %q", c)
		}
	}
	return nil
}
