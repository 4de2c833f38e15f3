// The audit chain's head, written to the log every interval it moved (and once more at close): a
// witness kept outside the database. Whoever removes the newest rows and rewrites the head to
// match is still caught: `plinth audit verify --head <seq>:<hash>` with a head from these lines.
import type pg from 'pg'
import type { Logger } from 'pino'
import { auditHead } from './trail.ts'

export class AuditCheckpoints {
  private timer: NodeJS.Timeout
  private written = -1

  constructor(
    private readonly pool: pg.Pool,
    private readonly log: Logger,
    intervalMs: number,
  ) {
    this.timer = setInterval(() => void this.write(), intervalMs)
    this.timer.unref()
  }

  /** Logs the head if it moved since the last line. A database not migrated yet has none: nothing to say. */
  async write() {
    try {
      const head = await auditHead(this.pool)
      if (head.seq === this.written) return
      this.written = head.seq
      this.log.info({ audit: { seq: head.seq, hash: head.hash, witness: `${head.seq}:${head.hash}` } }, 'audit checkpoint')
    } catch (err) {
      this.log.debug({ err }, 'no audit checkpoint: the head could not be read')
    }
  }

  async stop() {
    clearInterval(this.timer)
    await this.write()
  }
}
