// Package signature signs and verifies hookd webhook deliveries in every supported scheme.
//
// hookd signs each delivery with [Sign]; a receiver checks it with [Verify],
// passing the raw request body exactly as received (before any JSON parsing)
// and the secret it was given:
//
//	body, err := io.ReadAll(r.Body)
//	if err != nil { ... }
//	err = signature.Verify(signature.StandardWebhooks, "", secret, r.Header, body, signature.VerifyOptions{})
//	if err != nil {
//		http.Error(w, "invalid signature", http.StatusUnauthorized)
//		return
//	}
//
// The schemes, and what each puts on the wire:
//
//   - [StandardWebhooks] (the default): the Standard Webhooks 1.0 scheme. The
//     webhook-signature header carries "v1,<base64 HMAC-SHA256>" over
//     "{webhook-id}.{webhook-timestamp}.{body}", keyed with the base64-decoded
//     part of a "whsec_" secret. Any Standard Webhooks library verifies it.
//   - [HMACSHA256]: the header (default X-Signature) carries the lowercase hex
//     HMAC-SHA256 of the body.
//   - [Timestamped]: the header (default X-Webhook-Signature) carries
//     "sha256=<hex HMAC-SHA256>" over "{X-Timestamp}.{body}", and X-Timestamp
//     carries the unix time in seconds.
//   - [SharedSecret]: the header (default X-Webhook-Secret) carries the secret
//     itself. It authenticates the sender only, not the body, and is only safe
//     over https.
//
// For HMACSHA256 and Timestamped the HMAC key is the secret string's bytes
// exactly as given, whatever their form (as Node's crypto.createHmac("sha256",
// secret) would use them), even when the secret starts with "whsec_".
//
// While a secret is being rotated hookd signs with every active secret and
// sends the signatures space-separated in one header value; Verify accepts a
// request if any of them matches. Comparisons are constant-time, and the
// timestamped schemes reject requests whose timestamp is further than a
// tolerance (five minutes by default) from the current time.
//
// The package uses the standard library only, and all of its functions are
// safe for concurrent use.
package signature
