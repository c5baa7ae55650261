// The seed design's CDC handler in its own stack (Node.js, @aws-sdk/util-dynamodb,
// zlib): the baseline `bench/ingest` measures cloudpf's CDC path against, on the same
// event files. Per batch (one file) it unmarshalls each record's images, and for each
// tenant and day writes a gzipped JSON Lines change log (and for purchases a gzipped
// CSV with one row per line item), as files under an output directory. No search index.
//
// usage: node handler.mjs <products|purchases> <out dir> <event.json>...
// prints {"records": n, "seconds": s, "records_per_second": r} on stdout.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { unmarshall } from "@aws-sdk/util-dynamodb";

const [table, out, ...files] = process.argv.slice(2);
const keyName = table === "products" ? "product_id" : "purchase_id";
const csvColumns = [
  "purchase_id", "customer_id", "status", "created_at", "line_number", "product_id",
  "product_name", "quantity", "unit_price", "total_amount", "currency", "payment_method",
  "shipping_country", "shipping_city", "op", "sequence_number", "event_time",
];
const cell = (v) => `"${String(v ?? "").replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/[\r\n]/g, " ")}"`;

let records = 0;
const started = process.hrtime.bigint();
for (const file of files) {
  const event = JSON.parse(readFileSync(file, "utf8"));
  const groups = new Map();
  for (const r of event.Records) {
    records += 1;
    const d = r.dynamodb;
    // Numbers as strings keep money exact, as cloudpf does.
    const opts = { wrapNumbers: true };
    const keys = unmarshall(d.Keys, opts);
    const newImage = d.NewImage ? unmarshall(d.NewImage, opts) : null;
    const oldImage = d.OldImage ? unmarshall(d.OldImage, opts) : null;
    const eventTime = new Date(d.ApproximateCreationDateTime * 1000).toISOString();
    const image = newImage ?? oldImage;
    // The demo's one malformed record has no created_at: it lands by event time here
    // (cloudpf dead-letters it).
    const day = String((table === "purchases" && image?.created_at) || eventTime).slice(0, 10);
    const group = `tenant_id=${keys.tenant_id}/dt=${day}`;
    if (!groups.has(group)) groups.set(group, { json: [], csv: [] });
    const g = groups.get(group);
    const plain = (v) => JSON.parse(JSON.stringify(v, (_, x) => (x && x.value !== undefined && Object.keys(x).length === 1 ? x.value : x)));
    g.json.push(JSON.stringify({
      op: r.eventName, sequence_number: d.SequenceNumber, event_time: eventTime,
      keys: { tenant_id: keys.tenant_id, [keyName]: keys[keyName].toString() },
      new_image: newImage && plain(newImage), old_image: oldImage && plain(oldImage),
    }));
    if (table === "purchases" && image) {
      const p = plain(image);
      const items = p.items && p.items.length ? p.items : [{}];
      items.forEach((it, i) => {
        g.csv.push([
          p.purchase_id, p.customer_id, p.status, p.created_at, it.product_id ? i + 1 : "",
          it.product_id, it.name, it.quantity, it.unit_price, p.total_amount, p.currency,
          p.payment_method, p.shipping_country, p.shipping_city, r.eventName,
          d.SequenceNumber, eventTime,
        ].map(cell).join(","));
      });
    }
  }
  const first = event.Records[0]?.dynamodb?.SequenceNumber ?? "0";
  for (const [group, g] of groups) {
    const dir = join(out, table, group);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `${first}.json.gz`), gzipSync(g.json.join("\n") + "\n"));
    if (g.csv.length) {
      const csv = [csvColumns.map(cell).join(","), ...g.csv].join("\n") + "\n";
      writeFileSync(join(dir, `${first}.csv.gz`), gzipSync(csv));
    }
  }
}
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
console.log(JSON.stringify({ records, seconds, records_per_second: Math.round(records / seconds) }));
