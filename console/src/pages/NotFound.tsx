import { Empty } from "../components";
import { href } from "../router";

export function NotFound() {
  return (
    <Empty title="There is no such page">
      <a href={href("apps")}>Go to the applications</a>
    </Empty>
  );
}

export function Admin404() {
  return (
    <Empty title="There is no such page">
      <a href={href("environments")}>Go to the environments</a>
    </Empty>
  );
}
