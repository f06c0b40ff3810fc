// The same through require(): the CommonJS types of the package's "exports".
import sdk = require("@gatehouse/sdk");

export async function usage(): Promise<boolean> {
  const gate = new sdk.Gatehouse({ url: "http://127.0.0.1:8080", apiKey: "key" });
  const view = await gate.get("dec_1");
  const report = sdk.verifyPacket({}, { logKey: "k" });
  // @ts-expect-error guard needs args
  await gate.guard({ agent: "a", action: "b", risk: "low", subject: "c" }, async () => 1);
  return view.may_proceed && report.verified;
}
