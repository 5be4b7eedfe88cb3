// Package httpjson is a sources.Source for any REST API that lists
// servers as JSON: a field mapping says where each disposition field is in
// an item, and the pagination style, authentication and enum values are
// configured rather than coded.
//
//	src, err := httpjson.New("cmdb", httpjson.Options{
//		URL:   "https://cmdb.example/api/hosts",
//		Items: "results",
//		ID:    "name",
//		Fields: map[string]string{
//			"metro":      "site.metro",
//			"state":      "status",
//			"label.tier": "custom_fields.tier",
//		},
//		Values:     map[string]map[string]string{"state": {"active": "in-service", "*": ""}},
//		Pagination: httpjson.Pagination{Type: httpjson.NextLink, Path: "next"},
//		Auth:       httpjson.Auth{Type: httpjson.Bearer, TokenFile: "/run/secrets/cmdb"},
//	})
//
// Paths are dotted keys into each item ("site.slug"); a numeric segment
// indexes an array ("tags.0.slug"). A path that is missing or null means
// the field is unknown for that item. Pagination follows a next link, a
// cursor, or page numbers; every style is bounded by MaxPages and detects
// a server that sends the same page again.
package httpjson
