package signature_test

import (
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/hookd/hookd/signature"
)

func ExampleSign() {
	h, err := signature.Sign(signature.StandardWebhooks, "", []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}, signature.Message{
		ID:        "msg_p5jXN8AQM9LWM0D4loKWxJek",
		Timestamp: time.Unix(1614265330, 0),
		Body:      []byte(`{"test": 2432232314}`),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(h.Get("webhook-signature"))
	// Output: v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=
}

func ExampleVerify() {
	h := http.Header{}
	h.Set("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek")
	h.Set("webhook-timestamp", "1614265330")
	h.Set("webhook-signature", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
	body := []byte(`{"test": 2432232314}`)

	// A real receiver leaves Now nil to use the clock.
	opts := signature.VerifyOptions{Now: func() time.Time { return time.Unix(1614265330, 0) }}
	err := signature.Verify(signature.StandardWebhooks, "", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", h, body, opts)
	fmt.Println(err)

	opts.Now = func() time.Time { return time.Unix(1614265330, 0).Add(time.Hour) }
	err = signature.Verify(signature.StandardWebhooks, "", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", h, body, opts)
	fmt.Println(err)
	// Output:
	// <nil>
	// signature: timestamp out of range: webhook-timestamp 1614265330 is 1h0m0s old, more than 5m0s
}

func ExampleVerify_handler() {
	secret := "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" // from hookd, kept by the receiver
	handler := func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		if err != nil {
			http.Error(w, "unreadable body", http.StatusBadRequest)
			return
		}
		// Verify the raw bytes before parsing them.
		if err := signature.Verify(signature.StandardWebhooks, "", secret, r.Header, body, signature.VerifyOptions{}); err != nil {
			http.Error(w, "invalid signature", http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
	http.HandleFunc("/webhooks/hookd", handler)
}

func ExampleTimestampedSignature() {
	fmt.Println(signature.TimestampedSignature("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", 1614265330, []byte(`{"test": 2432232314}`)))
	// Output: sha256=2e37df5d4a028c51a7f3133d64ae1e300d2c2c900f1b1d49d4369ad2530f8964
}
