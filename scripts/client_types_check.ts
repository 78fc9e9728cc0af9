// Compiled (not run) against the types openapi-typescript generates from the
// API's document: it fails when the document stops describing these shapes.
import type { components, paths } from "./frontdesk-api";

type UserList =
  paths["/users"]["get"]["responses"][200]["content"]["application/json"];
type Problem = components["schemas"]["Problem"];

export function summary(list: UserList): string[] {
  return list.users.map((u) => {
    // A closed set: a misspelt status would not compile.
    const status: "pending" | "active" | "suspended" = u.status;
    const services: string[] = u.services;
    return `${u.email} ${status} ${services.join(",")}`;
  });
}

export function problemTitle(p: Problem): string {
  return `${p.status} ${p.title}`;
}

type Report =
  paths["/import"]["post"]["responses"][200]["content"]["application/json"];
export function rejectedRows(r: Report): number[] {
  return r.rows.filter((row) => row.outcome === "rejected").map((row) => row.row);
}
