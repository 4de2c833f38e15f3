// The tenant transactions' own series: how long each waited for a client, and how it ended.
// Registered on the host's registry (app/metrics.ts); the transaction calls these directly, so
// counting one is a call into prom-client, not back into the host.
import client from 'prom-client'
import type { TransactionObserver } from './transaction.ts'

export class TransactionMetrics implements TransactionObserver {
  private readonly committed: client.Counter.Internal
  private readonly rolledBack: client.Counter.Internal
  private readonly acquireWait: client.Histogram<string>

  constructor(registry: client.Registry, latencyBuckets: number[]) {
    const registers = [registry]
    const transactions = new client.Counter({
      name: 'plinth_db_transactions_total',
      help: 'Tenant transactions (requests and withTenantTx) by how they ended',
      labelNames: ['outcome'],
      registers,
    })
    this.committed = transactions.labels('committed')
    this.rolledBack = transactions.labels('rolled_back')
    this.acquireWait = new client.Histogram({
      name: 'plinth_db_client_wait_seconds',
      help: "Time a tenant transaction waited for a pooled client (its tenant's share, then the pool)",
      buckets: latencyBuckets,
      registers,
    })
  }

  acquired(seconds: number) {
    this.acquireWait.observe(seconds)
  }

  finished(outcome: 'committed' | 'rolled_back') {
    ;(outcome === 'committed' ? this.committed : this.rolledBack).inc()
  }
}
