// @gatehouse/sdk: the TypeScript SDK of Gatehouse. See README.md.

export { Gatehouse, TaskClient, type GatehouseOptions, type WaitForOptions } from "./client.js";
export type { GuardInput, GuardOptions, GuardOutcome, GuardReport } from "./guard.js";
export {
  GateError,
  GatePending,
  GateProtocolError,
  GateRejected,
  GateReportFailed,
  GateRequestError,
  GateUnavailable,
  type ServerError,
} from "./errors.js";
export {
  DEFAULT_AUDIENCE,
  TOKEN_TYPE,
  TokenVerificationError,
  verifyToken,
  type ApprovalClaims,
  type Jwk,
  type TokenAction,
  type TokenCheck,
  type VerifyTokenOptions,
} from "./token.js";
export {
  PACKET_VERSION,
  verifyPacket,
  type PacketCheck,
  type PacketVerification,
  type VerifyPacketOptions,
} from "./packet/verify.js";
export { CheckpointError, verifyCheckpoint, verifyNote, type VerifiedCheckpoint } from "./note.js";
export { decodeHash, leafHash, nodeHash, verifyConsistency, verifyInclusion } from "./merkle.js";
export { actionHash, canonicalize, canonicalSha256Hex, CanonicalizationError, sha256Hex, type Json } from "./jcs.js";
export type * from "./types.js";
