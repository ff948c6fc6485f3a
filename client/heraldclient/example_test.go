package heraldclient_test

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/herald-push/herald"
	"github.com/herald-push/herald/client/heraldclient"
)

// Example subscribes to "news" on a node running in the program, receives
// a message a backend publishes and publishes one itself.
func Example() {
	// A node in-process, for the example; a real client dials a running
	// herald, e.g. ws://push.example.com/ws with a token.
	cfg := herald.DefaultConfig()
	cfg.Listen, cfg.APIListen = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Loops = 1
	cfg.AllowAnonymous = true
	cfg.AnonymousPublish = []string{"news"} // clients may publish to news without a token
	cfg.DrainTimeout = 0
	cfg.Logger = slog.New(slog.DiscardHandler)
	node, err := herald.New(cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	go node.Run(ctx)
	<-node.Ready()

	c, err := heraldclient.Dial(ctx, "ws://"+node.Addr().String()+"/ws", heraldclient.Options{
		// Token: jwt, RefreshToken: func(ctx context.Context) (string, error) { ... },
		Backoff: heraldclient.Backoff{Min: 100 * time.Millisecond, Max: 5 * time.Second},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()

	sub, err := c.Subscribe(ctx, "news")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("subscribed", sub.Channel, "at", sub.Offset)

	node.Publish("news", []byte(`{"headline":"hello"}`)) // a backend publishing
	if _, err := c.Publish(ctx, "news", map[string]string{"headline": "from the client"}); err != nil {
		fmt.Println(err)
		return
	}

	for n := 0; n < 2; {
		switch ev := (<-c.Events()).(type) {
		case heraldclient.Message:
			fmt.Println(ev.Channel, ev.Offset, string(ev.Data))
			n++
		case heraldclient.Subscribed:
			if ev.Resubscribed && !ev.Recovered {
				fmt.Println("messages were lost: refetch", ev.Channel)
			}
		}
	}
	// Output:
	// subscribed news at 0
	// news 1 {"headline":"hello"}
	// news 2 {"headline":"from the client"}
}
