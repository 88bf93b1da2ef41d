/** The audit service's contract: the activity log (§6). Facts come in through its consumer. */
import { collection, defineContract } from "../contract.ts";

export const auditContract = defineContract({
  service: "audit",
  description: "The activity log, written from every service's facts",
  types: ["activity"],
  operations: {
    ...collection("audit", "activities", { access: { list: "admin", get: "admin" } }),
  },
});
