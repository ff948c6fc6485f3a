package auth_test

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/herald-push/herald/auth"
)

// Example shows the checks of an upgrade request in the order the server
// makes them.
func Example() {
	secret := []byte("an example secret of 32+ bytes!!")
	v, err := auth.NewVerifier(auth.Config{HMACSecret: secret})
	if err != nil {
		panic(err)
	}
	origins, err := auth.NewOriginPolicy([]string{"https://*.example.com"})
	if err != nil {
		panic(err)
	}
	perIP := auth.NewIPLimiter(100)

	token, err := auth.Sign(secret, auth.TokenSpec{
		Subject:   "alice",
		Subscribe: []string{"news.*", "private:{sub}"},
		ExpiresAt: time.Now().Add(time.Hour),
	})
	if err != nil {
		panic(err)
	}

	fmt.Println("origin ok:", origins.Allowed("https://app.example.com", "push.example.net"))
	ip := netip.MustParseAddr("198.51.100.7")
	fmt.Println("ip ok:", perIP.Acquire(ip))
	defer perIP.Release(ip)

	claims, err := v.Verify(token)
	if err != nil {
		var reason *auth.Error
		if errors.As(err, &reason) {
			fmt.Println("401", reason.Code)
		}
		return
	}
	fmt.Println(claims.CanSubscribe("news.eu"), claims.CanSubscribe("private:alice"),
		claims.CanSubscribe("user:alice"), claims.CanSubscribe("user:bob"))

	_, err = v.Verify(token + "x")
	var reason *auth.Error
	fmt.Println(errors.As(err, &reason), reason.Code)
	// Output:
	// origin ok: true
	// ip ok: true
	// true true true false
	// true bad_signature
}
