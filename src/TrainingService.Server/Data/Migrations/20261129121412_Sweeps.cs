using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace TrainingService.Server.Data.Migrations
{
    /// <inheritdoc />
    public partial class Sweeps : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<Guid>(
                name: "sweep_id",
                table: "jobs",
                type: "uuid",
                nullable: true);

            migrationBuilder.AddColumn<string>(
                name: "sweep_parameters",
                table: "jobs",
                type: "jsonb",
                nullable: true);

            migrationBuilder.AddColumn<int>(
                name: "sweep_trial",
                table: "jobs",
                type: "integer",
                nullable: true);

            migrationBuilder.CreateTable(
                name: "sweeps",
                columns: table => new
                {
                    id = table.Column<Guid>(type: "uuid", nullable: false),
                    tenant = table.Column<string>(type: "character varying(64)", nullable: false),
                    created_at = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: false),
                    status = table.Column<string>(type: "character varying(16)", maxLength: 16, nullable: false),
                    stop_reason = table.Column<string>(type: "character varying(32)", maxLength: 32, nullable: true),
                    spec = table.Column<string>(type: "jsonb", nullable: false),
                    next_trial = table.Column<int>(type: "integer", nullable: false),
                    exhausted = table.Column<bool>(type: "boolean", nullable: false),
                    deadline = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: true),
                    finished_at = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: true),
                    updated_at = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_sweeps", x => x.id);
                    table.CheckConstraint("ck_sweeps_status", "status IN ('running', 'completed', 'cancelled')");
                    table.ForeignKey(
                        name: "fk_sweeps_tenants_tenant",
                        column: x => x.tenant,
                        principalTable: "tenants",
                        principalColumn: "name",
                        onDelete: ReferentialAction.Restrict);
                });

            migrationBuilder.CreateIndex(
                name: "ix_jobs_sweep_id_sweep_trial",
                table: "jobs",
                columns: new[] { "sweep_id", "sweep_trial" },
                unique: true,
                filter: "sweep_id IS NOT NULL");

            migrationBuilder.CreateIndex(
                name: "ix_sweeps_status",
                table: "sweeps",
                column: "status");

            migrationBuilder.CreateIndex(
                name: "ix_sweeps_tenant_created_at_id",
                table: "sweeps",
                columns: new[] { "tenant", "created_at", "id" },
                descending: new bool[0]);

            migrationBuilder.AddForeignKey(
                name: "fk_jobs_sweeps_sweep_id",
                table: "jobs",
                column: "sweep_id",
                principalTable: "sweeps",
                principalColumn: "id",
                onDelete: ReferentialAction.SetNull);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropForeignKey(
                name: "fk_jobs_sweeps_sweep_id",
                table: "jobs");

            migrationBuilder.DropTable(
                name: "sweeps");

            migrationBuilder.DropIndex(
                name: "ix_jobs_sweep_id_sweep_trial",
                table: "jobs");

            migrationBuilder.DropColumn(
                name: "sweep_id",
                table: "jobs");

            migrationBuilder.DropColumn(
                name: "sweep_parameters",
                table: "jobs");

            migrationBuilder.DropColumn(
                name: "sweep_trial",
                table: "jobs");
        }
    }
}
