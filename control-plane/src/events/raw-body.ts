import type { Request } from 'express';
import { Problem } from '../common/problem';

/** Reads a request body as bytes, refusing it (413) as soon as it passes `limit`. */
export function readRawBody(req: Request, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    // A body something else already consumed would never 'end' again: fail now instead of hanging.
    if (req.readableEnded || (req as { _body?: boolean })._body) {
      reject(new Error(`the body of ${req.method} ${req.path} was read before its handler`));
      return;
    }
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) {
      req.resume();
      reject(new Problem(413, 'Content Too Large', `The body is over the limit of ${limit} bytes.`));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let refused = false;
    req.on('data', (chunk: Buffer) => {
      if (refused) return;
      size += chunk.length;
      if (size > limit) {
        refused = true;
        reject(new Problem(413, 'Content Too Large', `The body is over the limit of ${limit} bytes.`));
        return;
      }
      chunks.push(chunk);
    });
    let ended = false;
    req.on('end', () => {
      ended = true;
      if (!refused) resolve(Buffer.concat(chunks));
    });
    req.on('error', (error) => refused || reject(error));
    // A client that hangs up mid-body must not leave the request waiting forever.
    req.on('close', () => ended || refused || reject(new Problem(400, 'Bad Request', 'The request body ended early.')));
  });
}
