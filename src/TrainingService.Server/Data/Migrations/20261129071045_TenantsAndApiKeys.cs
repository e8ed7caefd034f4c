using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace TrainingService.Server.Data.Migrations
{
    /// <inheritdoc />
    public partial class TenantsAndApiKeys : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "ix_jobs_created_at_id",
                table: "jobs");

            migrationBuilder.DropPrimaryKey(
                name: "pk_idempotency_keys",
                table: "idempotency_keys");

            migrationBuilder.DropIndex(
                name: "ix_datasets_created_at",
                table: "datasets");

            migrationBuilder.DropIndex(
                name: "ix_datasets_sha256_delimiter",
                table: "datasets");

            migrationBuilder.AddColumn<string>(
                name: "tenant",
                table: "jobs",
                type: "character varying(64)",
                nullable: false,
                defaultValue: "default");

            migrationBuilder.AddColumn<string>(
                name: "tenant",
                table: "idempotency_keys",
                type: "text",
                nullable: false,
                defaultValue: "default");

            migrationBuilder.AddColumn<string>(
                name: "tenant",
                table: "datasets",
                type: "character varying(64)",
                nullable: false,
                defaultValue: "default");

            migrationBuilder.AddPrimaryKey(
                name: "pk_idempotency_keys",
                table: "idempotency_keys",
                columns: new[] { "tenant", "key" });

            migrationBuilder.CreateTable(
                name: "tenants",
                columns: table => new
                {
                    name = table.Column<string>(type: "character varying(64)", maxLength: 64, nullable: false),
                    created_at = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: false),
                    created_by = table.Column<string>(type: "text", nullable: true)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_tenants", x => x.name);
                });

            // Rows from before tenants belong to "default", the tenant of the first owner key.
            migrationBuilder.Sql("INSERT INTO tenants (name, created_at) VALUES ('default', now())");
            foreach (var table in new[] { "jobs", "idempotency_keys", "datasets" })
            {
                migrationBuilder.Sql($"ALTER TABLE {table} ALTER COLUMN tenant DROP DEFAULT"); // every insert names its tenant
            }

            migrationBuilder.CreateTable(
                name: "api_keys",
                columns: table => new
                {
                    id = table.Column<string>(type: "character varying(32)", maxLength: 32, nullable: false),
                    tenant = table.Column<string>(type: "character varying(64)", nullable: false),
                    role = table.Column<string>(type: "character varying(16)", maxLength: 16, nullable: false),
                    name = table.Column<string>(type: "character varying(256)", maxLength: 256, nullable: false),
                    secret_hash = table.Column<byte[]>(type: "bytea", nullable: false),
                    created_at = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: false),
                    created_by = table.Column<string>(type: "text", nullable: true),
                    revoked_at = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: true),
                    revoked_by = table.Column<string>(type: "text", nullable: true)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_api_keys", x => x.id);
                    table.CheckConstraint("ck_api_keys_role", "role IN ('viewer', 'member', 'admin', 'owner')");
                    table.ForeignKey(
                        name: "fk_api_keys_tenants_tenant",
                        column: x => x.tenant,
                        principalTable: "tenants",
                        principalColumn: "name",
                        onDelete: ReferentialAction.Restrict);
                });

            migrationBuilder.CreateIndex(
                name: "ix_jobs_tenant_created_at_id",
                table: "jobs",
                columns: new[] { "tenant", "created_at", "id" },
                descending: new bool[0]);

            migrationBuilder.CreateIndex(
                name: "ix_jobs_tenant_status",
                table: "jobs",
                columns: new[] { "tenant", "status" });

            migrationBuilder.CreateIndex(
                name: "ix_datasets_tenant_created_at",
                table: "datasets",
                columns: new[] { "tenant", "created_at" });

            migrationBuilder.CreateIndex(
                name: "ix_datasets_tenant_sha256_delimiter",
                table: "datasets",
                columns: new[] { "tenant", "sha256", "delimiter" },
                unique: true);

            migrationBuilder.CreateIndex(
                name: "ix_api_keys_tenant_created_at",
                table: "api_keys",
                columns: new[] { "tenant", "created_at" });

            migrationBuilder.AddForeignKey(
                name: "fk_datasets_tenants_tenant",
                table: "datasets",
                column: "tenant",
                principalTable: "tenants",
                principalColumn: "name",
                onDelete: ReferentialAction.Restrict);

            migrationBuilder.AddForeignKey(
                name: "fk_jobs_tenants_tenant",
                table: "jobs",
                column: "tenant",
                principalTable: "tenants",
                principalColumn: "name",
                onDelete: ReferentialAction.Restrict);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropForeignKey(
                name: "fk_datasets_tenants_tenant",
                table: "datasets");

            migrationBuilder.DropForeignKey(
                name: "fk_jobs_tenants_tenant",
                table: "jobs");

            migrationBuilder.DropTable(
                name: "api_keys");

            migrationBuilder.DropTable(
                name: "tenants");

            migrationBuilder.DropIndex(
                name: "ix_jobs_tenant_created_at_id",
                table: "jobs");

            migrationBuilder.DropIndex(
                name: "ix_jobs_tenant_status",
                table: "jobs");

            migrationBuilder.DropPrimaryKey(
                name: "pk_idempotency_keys",
                table: "idempotency_keys");

            migrationBuilder.DropIndex(
                name: "ix_datasets_tenant_created_at",
                table: "datasets");

            migrationBuilder.DropIndex(
                name: "ix_datasets_tenant_sha256_delimiter",
                table: "datasets");

            migrationBuilder.DropColumn(
                name: "tenant",
                table: "jobs");

            migrationBuilder.DropColumn(
                name: "tenant",
                table: "idempotency_keys");

            migrationBuilder.DropColumn(
                name: "tenant",
                table: "datasets");

            migrationBuilder.AddPrimaryKey(
                name: "pk_idempotency_keys",
                table: "idempotency_keys",
                column: "key");

            migrationBuilder.CreateIndex(
                name: "ix_jobs_created_at_id",
                table: "jobs",
                columns: new[] { "created_at", "id" },
                descending: new bool[0]);

            migrationBuilder.CreateIndex(
                name: "ix_datasets_created_at",
                table: "datasets",
                column: "created_at");

            migrationBuilder.CreateIndex(
                name: "ix_datasets_sha256_delimiter",
                table: "datasets",
                columns: new[] { "sha256", "delimiter" },
                unique: true);
        }
    }
}
