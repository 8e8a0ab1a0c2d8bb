package aggregator

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	screenpop "github.com/screenpop/screenpop"
	"github.com/screenpop/screenpop/bearer"
)

// EvictRequest is the body of a POST to EvictHandler.
type EvictRequest struct {
	CustomerID string `json:"customer_id"`
	Phone      string `json:"phone"`
}

// evictTimeout bounds one eviction: a source system's webhook should get
// an answer even when the cache hangs.
const evictTimeout = 5 * time.Second

// maxEvictBody is far more than an id and a number need.
const maxEvictBody = 4 << 10

// EvictHandler serves the eviction API for source systems that tell
// screenpop a customer's data changed: POST with "Authorization: Bearer
// <token>" (one of tokens, checked at configuration time by
// bearer.NewSet) and a JSON EvictRequest with at least one of its fields.
// Answers: 204 evicted; 400 bad body or number; 401 no or wrong token; 405
// not a POST; 503 the cache failed. Errors are JSON ({"error": "..."}).
// With nil tokens every request is refused.
func EvictHandler(a *Aggregator, tokens *bearer.Set, logger *slog.Logger) http.Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			evictError(w, http.StatusMethodNotAllowed, "use POST")
			return
		}
		if tokens.Check(r.Header.Get("Authorization")) != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="screenpop"`)
			evictError(w, http.StatusUnauthorized, "a valid bearer token is required")
			return
		}
		var req EvictRequest
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxEvictBody))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			evictError(w, http.StatusBadRequest, "the body must be a JSON object with customer_id and/or phone: "+bodyProblem(err))
			return
		}
		if dec.More() {
			evictError(w, http.StatusBadRequest, "the body must hold one JSON object")
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), evictTimeout)
		defer cancel()
		err := a.Evict(ctx, req.CustomerID, req.Phone)
		switch {
		case errors.Is(err, ErrNothingToEvict):
			evictError(w, http.StatusBadRequest, err.Error())
			return
		case errors.Is(err, ErrNotAPhone), errors.Is(err, ErrWithheld):
			evictError(w, http.StatusBadRequest, "phone is not a valid phone number")
			return
		case err != nil:
			logger.Error("cannot evict cached data", "customer", req.CustomerID, "phone", screenpop.MaskPhone(req.Phone), "err", err)
			evictError(w, http.StatusServiceUnavailable, "the cache could not be updated; try again")
			return
		}
		logger.Info("cached data evicted", "customer", req.CustomerID, "phone", screenpop.MaskPhone(req.Phone))
		w.WriteHeader(http.StatusNoContent)
	})
}

// bodyProblem describes a decoding error without echoing the body.
func bodyProblem(err error) string {
	var tooBig *http.MaxBytesError
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &tooBig):
		return "too large"
	case errors.Is(err, io.EOF):
		return "empty"
	case errors.As(err, &syntax), errors.Is(err, io.ErrUnexpectedEOF):
		return "not valid JSON"
	case errors.As(err, &typ):
		return typ.Field + " must be a string"
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return "unknown field " + strings.TrimPrefix(err.Error(), "json: unknown field ")
	}
	return "not valid JSON"
}

func evictError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}
