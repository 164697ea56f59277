// The ceiling of one Node.js event loop on this machine, for `make bench`: Node's HTTP server with
// nothing of kfp-artifacts in it. MODE=fixed answers every request with the same 4 KiB from memory (no
// disk, no authorization, no router); MODE=discard reads each request body, drops it and answers 201 (200 to a GET).
// Whatever the artifact server does on top can only be slower than this.
import http from "node:http";

const mode = process.env.MODE;
const body = Buffer.alloc(4096, 0x61);
const server = http.createServer((request, response) => {
  if (mode === "fixed") {
    response.writeHead(200, { "Content-Type": "application/octet-stream", "Content-Length": body.length });
    response.end(body);
    return;
  }
  request.on("data", () => {});
  request.on("end", () => {
    response.writeHead(request.method === "PUT" ? 201 : 200, { "Content-Length": "0" });
    response.end();
  });
});
server.listen(Number(process.env.PORT), "127.0.0.1");
process.once("SIGTERM", () => server.close(() => process.exit(0)));
