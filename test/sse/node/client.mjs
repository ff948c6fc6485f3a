// An eventsource (npm) client for herald's SSE tests: it opens URL and
// prints one JSON line per event it dispatches ({"type","id","data"}),
// and {"type":"open"} / {"type":"error"} as the connection comes and
// goes. The package reconnects by itself, sending Last-Event-ID.
import { EventSource } from 'eventsource';

const es = new EventSource(process.argv[2]);
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');
es.onopen = () => out({ type: 'open' });
es.onerror = () => out({ type: 'error' });
for (const type of ['message', 'recovered', 'error']) {
  es.addEventListener(type, (e) => {
    if (e.data !== undefined) out({ type, id: e.lastEventId, data: e.data });
  });
}
