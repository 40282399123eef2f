// Prisma 7 configuration. The benchmark only runs `prisma generate`; the
// tables come from evaldb's migrations (bench/cmd/benchseed).
import { defineConfig } from "prisma/config";

export default defineConfig({
  schema: "schema.prisma",
});
