package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The headers of a webhook request.
const (
	HeaderIdempotencyKey = "Idempotency-Key"
	HeaderTimestamp      = "X-Fleetkit-Timestamp"
	HeaderSignature      = "X-Fleetkit-Signature"
)

// DefaultMaxSkew is how far Verify lets a request's timestamp be from
// the receiver's clock when it is given no limit.
const DefaultMaxSkew = 5 * time.Minute

// ErrSignature is wrapped by Verify's errors: a request whose signature
// or timestamp is missing, malformed, wrong or too old.
var ErrSignature = errors.New("webhook: bad signature")

const signaturePrefix = "sha256="

// Sign returns the X-Fleetkit-Signature value of body sent at timestamp
// (unix seconds): "sha256=" and the hex HMAC-SHA256 of
// "<timestamp>.<body>" under secret.
func Sign(secret []byte, timestamp int64, body []byte) string {
	return signaturePrefix + hex.EncodeToString(mac(secret, timestamp, body))
}

func mac(secret []byte, timestamp int64, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write(strconv.AppendInt(nil, timestamp, 10))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Verify checks a webhook request as its receiver sees it: header holds
// X-Fleetkit-Timestamp and X-Fleetkit-Signature, body is the request
// body exactly as received, and now is the receiver's clock. The
// timestamp must be within maxSkew of now (DefaultMaxSkew if maxSkew is
// not positive). Every error wraps ErrSignature.
func Verify(secret []byte, header http.Header, body []byte, now time.Time, maxSkew time.Duration) error {
	if maxSkew <= 0 {
		maxSkew = DefaultMaxSkew
	}
	ts := header.Get(HeaderTimestamp)
	if ts == "" {
		return fmt.Errorf("%w: no %s header", ErrSignature, HeaderTimestamp)
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %s %q is not unix seconds", ErrSignature, HeaderTimestamp, ts)
	}
	if skew := now.Sub(time.Unix(sec, 0)).Abs(); skew > maxSkew {
		return fmt.Errorf("%w: timestamp %s is %s from now, more than %s", ErrSignature, ts, skew, maxSkew)
	}
	sig := header.Get(HeaderSignature)
	hexSig, ok := strings.CutPrefix(sig, signaturePrefix)
	if !ok {
		return fmt.Errorf("%w: %s header %q does not start with %q", ErrSignature, HeaderSignature, sig, signaturePrefix)
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil {
		return fmt.Errorf("%w: %s is not hex", ErrSignature, HeaderSignature)
	}
	if !hmac.Equal(got, mac(secret, sec, body)) {
		return fmt.Errorf("%w: signature does not match", ErrSignature)
	}
	return nil
}
