// A tenant request's transaction: the whole of its state, in one object. The HTTP layer makes one
// for each tenant request and ends it as the response leaves (host/tenant-request.ts); the Express
// chain, req.db and withTenantTx ask it for the transaction (open() opens it on first need, once),
// and none of them ends it.
import type { Tenant } from './registry.ts'
import { TenantTransaction, type TenantDb, type TenantPool } from './transaction.ts'

export class RequestTransaction {
  private opening: Promise<TenantTransaction> | undefined
  private tx: TenantTransaction | undefined
  /** The response is out (or its caller gone): nothing may open the transaction now. */
  private over = false

  constructor(
    private readonly tenantPool: TenantPool,
    readonly tenant: Tenant,
  ) {}

  /** The transaction, opened on the first call within the tenant's fair share; the same one after. */
  open(): Promise<TenantTransaction> {
    if (this.opening) return this.opening
    // Nothing would ever commit or roll back a transaction opened after the response went out.
    if (this.over) return Promise.reject(new Error("the response was already sent; the request's transaction cannot open now"))
    this.opening = TenantTransaction.begin(this.tenantPool, this.tenant).then((tx) => (this.tx = tx))
    return this.opening
  }

  /** Whether anything has opened it (it may be opening still, or over). */
  get opened(): boolean {
    return this.opening !== undefined
  }

  /** `req.db`: Drizzle on the open transaction, and a clear error before it opens or after it ends. */
  get db(): TenantDb {
    if (this.tx && !this.tx.finished) return this.tx.db
    throw new Error(
      this.tx
        ? "req.db was used after the request's transaction ended (its response was sent); send the response last"
        : "req.db is not open here: a route's guards run before the request takes a database connection. Use req.db in the route's handler, or ctx.withTenantTx(req.tenant.id, db => ...) in a guard",
    )
  }

  /**
   * Ends it as the response leaves: COMMIT when `keep`, else ROLLBACK. Throws when COMMIT fails
   * (the response must not then say it succeeded).
   */
  async finish(keep: boolean) {
    this.over = true
    const tx = await this.settled()
    if (!tx || tx.finished) return
    if (keep) await tx.commit()
    else await tx.rollback()
  }

  /** The response went out without passing finish (the caller left, the reply was hijacked), or the handler threw: ROLLBACK. */
  async abandon(options: { over: boolean }) {
    if (options.over) this.over = true
    await (await this.settled())?.rollback()
  }

  /** Why BEGIN or its settings failed, when they did (the tenant dropped a moment ago). */
  async beginFailure(): Promise<unknown> {
    return (await this.settled())?.beginFailure()
  }

  /** The transaction once it has opened; undefined if it never was, or failed to. */
  private async settled(): Promise<TenantTransaction | undefined> {
    if (this.tx || !this.opening) return this.tx
    return this.opening.catch(() => undefined)
  }
}
