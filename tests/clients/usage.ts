// Compiled by check.sh with `tsc --strict --noEmit` against the types openapi-typescript
// generates from the spec (./schema.d.ts, written there): typed calls through openapi-fetch,
// so a spec change that breaks them (a renamed field, a lost operation, an untyped body)
// fails the check. Never run; the Rust tests drive the real server.
import createClient from "openapi-fetch";
import type { components, paths } from "./schema";

type Task = components["schemas"]["Task"];

export async function smoke(baseUrl: string): Promise<Task | undefined> {
  const client = createClient<paths>({ baseUrl });
  const registered = await client.POST("/auth/register", {
    body: { email: "ada@example.com", name: "Ada Lovelace", password: "correct horse battery" },
  });
  if (registered.error) {
    const code: components["schemas"]["ErrorCode"] = registered.error.code;
    console.log(code);
    return undefined;
  }
  const token: string = registered.data.token;
  const headers = { Authorization: `Bearer ${token}` };
  const created = await client.POST("/tasks", {
    headers,
    body: { title: "Write the release notes", status: "todo", priority: null },
  });
  if (created.error) return undefined;
  const task: Task = created.data;
  const found = await client.GET("/tasks/search", { headers, params: { query: { q: "release" } } });
  const first: Task | undefined = found.data?.items[0]?.task;
  return first ?? task;
}
