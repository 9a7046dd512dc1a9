// The local SQS: fauxqs 1.9.2 speaking the SQS (JSON) protocol over HTTP, on loopback, queues made.
//
//   node devstack/sqs_server/server.mjs [--host 127.0.0.1] [--port 9324] [--region us-east-1] [--queue NAME ...]
//
// Chosen over moto's server because moto costs O(queue depth) per message (a 3,000-job backlog
// took 1.2 s per ReceiveMessage) while fauxqs holds a 10,000-message backlog at ~1,500 received
// and ~580 sent messages a second on a 2-core machine, well above the shop's needs (docs/performance.md,
// "The local SQS server"). Why a wrapper instead of `npx fauxqs`:
//  - fauxqs' own start-up listens on 0.0.0.0 (hard-coded); buildApp() + listen() binds loopback.
//  - fauxqs finds a queue by its exact URL (http://sqs.<region>.localhost:<port>/000000000000/<name>);
//    the shop's settings build <endpoint>/123456789012/<name>, as for moto and AWS. The store falls
//    back to the URL's last segment, the queue's name, and CreateQueue answers with a URL on the
//    Host the client used.
//  - `--queue` creates queues before the first request: a restarted server then looks like SQS
//    after an outage (the queues are there, the messages are gone), never like lost queues.
// It reaches into fauxqs' store classes (dist/), so the version is pinned exactly (package-lock.json);
// 2.x needs Node 22.
import { buildApp } from "fauxqs";
import { SqsStore } from "./node_modules/fauxqs/dist/sqs/sqsStore.js";
import { SnsStore } from "./node_modules/fauxqs/dist/sns/snsStore.js";
import { S3Store } from "./node_modules/fauxqs/dist/s3/s3Store.js";

const options = { host: "127.0.0.1", port: 9324, region: "us-east-1", queues: [] };
const args = process.argv.slice(2);
for (let i = 0; i < args.length; i += 2) {
  const [flag, value] = [args[i], args[i + 1]];
  if (flag === "--host") options.host = value;
  else if (flag === "--port") options.port = Number.parseInt(value, 10);
  else if (flag === "--region") options.region = value;
  else if (flag === "--queue") options.queues.push(value);
  else {
    console.error(`unknown argument ${flag}`);
    process.exit(2);
  }
}

const sqsStore = new SqsStore();
sqsStore.host = ""; // CreateQueue answers http://<Host header>/000000000000/<name>
sqsStore.region = options.region;
const byExactUrl = sqsStore.getQueue.bind(sqsStore);
sqsStore.getQueue = (url) => {
  const queue = byExactUrl(url);
  if (queue || typeof url !== "string") return queue;
  return sqsStore.getQueueByName(url.replace(/\/+$/, "").split("/").pop());
};

const app = buildApp({
  logger: false,
  defaultRegion: options.region,
  stores: { sqsStore, snsStore: new SnsStore(), s3Store: new S3Store() },
});
for (const name of options.queues) {
  const url = `http://${options.host}:${options.port}/000000000000/${name}`;
  const attributes = name.endsWith(".fifo") ? { FifoQueue: "true" } : {};
  sqsStore.createQueue(name, url, `arn:aws:sqs:${options.region}:000000000000:${name}`, attributes);
}
await app.listen({ host: options.host, port: options.port });
console.log(`SQS server (fauxqs 1.9.2) on http://${options.host}:${options.port}`);
const stop = async () => {
  await app.close();
  process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
