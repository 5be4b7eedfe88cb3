package refd

import (
	_ "embed"
	"net/http"
	"strconv"
)

// openapiJSON is the OpenAPI 3.1 document of the API, written by hand and
// checked against the route table by a test.
//
//go:embed openapi.json
var openapiJSON []byte

// OpenAPI returns the OpenAPI document of the API.
func OpenAPI() []byte { return append([]byte(nil), openapiJSON...) }

func (s *Server) handleOpenAPI(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(openapiJSON)))
	_, _ = w.Write(openapiJSON)
	return nil
}
