// Compile-time checks of the published ES module types (through the
// package's "exports"): what a user writes must type-check, and the
// mistakes marked @ts-expect-error must not.
import {
  Gatehouse,
  GatePending,
  GateRejected,
  GateRequestError,
  GateUnavailable,
  verifyPacket,
  verifyToken,
  type ApprovalClaims,
  type GateView,
  type PacketVerification,
  type RecordView,
} from "@gatehouse/sdk";

/** Arguments declared as an interface (no index signature) are accepted as args. */
interface RefundArgs {
  amount: number;
  currency: "usd" | "eur";
}

export async function usage(): Promise<void> {
  const gate = new Gatehouse({ url: "http://127.0.0.1:8080", apiKey: "key", timeoutMs: 5_000 });
  const d: GateView = await gate.request({ agent: "a", action: "issue_refund", risk: "high", subject: "cus_1", context: { amount: 5 } });
  const s: "allow" | "reject" | "pending_review" | "approved" | "rejected" | "expired" = d.status;
  const ok: boolean = d.may_proceed;
  await gate.tasks("run-1").request({ workflow_name: "ci", tool_name: "deploy", subject: "main", risk_level: "high", payload: { sha: "abc" } });
  const r: RecordView = await gate.decide({ question: "q?", context: { workflow: "w", requested_action: "x", amount: 3 } });
  const v: string = r.record_hash;
  await gate.waitFor(d.id, { timeoutMs: 1_000 });

  const refunded: { id: string } = await gate.guard(
    { agent: "a", action: "issue_refund", risk: "high", subject: "cus_1", args: { amount: 5, currency: "usd" } },
    async (args) => {
      const amount: unknown = args.amount;
      return { id: String(amount) };
    },
    { waitTimeoutMs: 30_000, report: (o) => (o.ok ? { target_object: o.result.id } : undefined) },
  );

  const typed: number = await gate.guard(
    { agent: "a", action: "issue_refund", risk: "low", subject: "cus_2", args: { amount: 1, currency: "usd" } as RefundArgs },
    (args: RefundArgs) => args.amount,
  );
  // @ts-expect-error args must be an object
  await gate.guard({ agent: "a", action: "b", risk: "low", subject: "c", args: 5 }, async () => 1);

  const claims: ApprovalClaims = await verifyToken("t", { tool_name: "x", subject: "y", payload: {} }, { jwks: await gate.jwks() });
  const exp: number = claims.exp;
  const report: PacketVerification = verifyPacket(await gate.packet(d.id), { logKey: await gate.logKey() });
  const names: string[] = report.checks.map((c) => c.name);

  try {
    await gate.get(d.id, { wait: 5 });
  } catch (e) {
    if (e instanceof GateRejected) console.log(e.status, e.reasons);
    if (e instanceof GatePending) console.log(e.decisionId);
    if (e instanceof GateUnavailable) console.log(e.status, e.retryAfterMs);
    if (e instanceof GateRequestError) console.log(e.code);
  }

  // @ts-expect-error risk is low, medium or high
  await gate.request({ agent: "a", action: "b", risk: "extreme", subject: "c" });
  // @ts-expect-error the Gate API's fields are snake_case
  await gate.tasks("t").request({ workflowName: "ci", tool_name: "x", subject: "s", risk_level: "low" });
  // @ts-expect-error verifyPacket needs the log key
  verifyPacket({}, {});
  void [s, ok, v, refunded, typed, exp, names];
}
