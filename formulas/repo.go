package formulas

import "context"

// Tag is a tag of a repository with the commit it points to (annotated tags
// peeled to their commit).
type Tag struct {
	Name   string `json:"name"`
	Commit string `json:"commit"`
}

// Repo is one formula repository, as resolution and Build use it. The git
// implementation is package gitrepo; tests may use an in-memory fake.
type Repo interface {
	// Tags lists the repository's tags.
	Tags(ctx context.Context) ([]Tag, error)
	// ResolveRef returns the full commit id of a ref: "refs/heads/<branch>",
	// a tag, or a full or abbreviated commit id. A ref the repository does
	// not have is an error wrapping ErrRefNotFound.
	ResolveRef(ctx context.Context, ref string) (string, error)
	// Export writes the tree of commit, or of its subdirectory subdir when
	// not empty, into dst, an existing empty directory. A commit the
	// repository does not have is an error wrapping ErrRefNotFound.
	Export(ctx context.Context, commit, subdir, dst string) error
}

// Repos opens formula repositories by location: a URL or an absolute path,
// as in Formula.Repo.
type Repos interface {
	Open(ctx context.Context, location string) (Repo, error)
}
