// What the console knows about the session: who signed in, the knowledge bases they may manage, the one chosen.

export const state = {
  caller: null, // {role: "admin" | "write" | "read", kbs: [...] | null}
  kbs: [], // from GET /api/kbs, narrowed to a key's own
  kbId: "default",
};

export const isAdmin = () => state.caller !== null && state.caller.role === "admin";
export const canWrite = () => state.caller !== null && state.caller.role !== "read";
