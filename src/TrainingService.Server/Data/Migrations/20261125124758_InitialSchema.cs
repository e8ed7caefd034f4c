using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace TrainingService.Server.Data.Migrations
{
    /// <inheritdoc />
    public partial class InitialSchema : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.CreateTable(
                name: "datasets",
                columns: table => new
                {
                    id = table.Column<Guid>(type: "uuid", nullable: false),
                    name = table.Column<string>(type: "text", nullable: false),
                    created_at = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: false),
                    size_bytes = table.Column<long>(type: "bigint", nullable: false),
                    row_count = table.Column<long>(type: "bigint", nullable: false),
                    sha256 = table.Column<string>(type: "character varying(64)", maxLength: 64, nullable: false),
                    delimiter = table.Column<string>(type: "text", nullable: false),
                    chunk_rows = table.Column<int>(type: "integer", nullable: false),
                    columns = table.Column<string>(type: "jsonb", nullable: false),
                    preview = table.Column<string>(type: "jsonb", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_datasets", x => x.id);
                });

            migrationBuilder.CreateTable(
                name: "dataset_chunks",
                columns: table => new
                {
                    dataset_id = table.Column<Guid>(type: "uuid", nullable: false),
                    column_index = table.Column<int>(type: "integer", nullable: false),
                    chunk_index = table.Column<int>(type: "integer", nullable: false),
                    row_count = table.Column<int>(type: "integer", nullable: false),
                    encoding = table.Column<short>(type: "smallint", nullable: false),
                    data = table.Column<byte[]>(type: "bytea", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_dataset_chunks", x => new { x.dataset_id, x.column_index, x.chunk_index });
                    table.ForeignKey(
                        name: "fk_dataset_chunks_datasets_dataset_id",
                        column: x => x.dataset_id,
                        principalTable: "datasets",
                        principalColumn: "id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateTable(
                name: "jobs",
                columns: table => new
                {
                    id = table.Column<Guid>(type: "uuid", nullable: false),
                    created_at = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: false),
                    dataset_id = table.Column<Guid>(type: "uuid", nullable: true),
                    status = table.Column<string>(type: "character varying(16)", maxLength: 16, nullable: false),
                    spec = table.Column<string>(type: "jsonb", nullable: false),
                    seed = table.Column<int>(type: "integer", nullable: false),
                    total_epochs = table.Column<int>(type: "integer", nullable: false),
                    started_at = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: true),
                    finished_at = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: true),
                    cancel_requested_at = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: true),
                    transitions = table.Column<string>(type: "jsonb", nullable: false),
                    stop_reason = table.Column<string>(type: "text", nullable: true),
                    failure_code = table.Column<string>(type: "text", nullable: true),
                    failure_message = table.Column<string>(type: "text", nullable: true),
                    failure_epoch = table.Column<int>(type: "integer", nullable: true),
                    epochs_completed = table.Column<int>(type: "integer", nullable: false),
                    last_train_loss = table.Column<double>(type: "double precision", nullable: true),
                    last_val_loss = table.Column<double>(type: "double precision", nullable: true),
                    best_val_loss = table.Column<double>(type: "double precision", nullable: true),
                    best_val_loss_epoch = table.Column<int>(type: "integer", nullable: true),
                    best_epoch = table.Column<int>(type: "integer", nullable: true),
                    data_summary = table.Column<string>(type: "jsonb", nullable: true),
                    retry_of = table.Column<Guid>(type: "uuid", nullable: true),
                    hangfire_job_id = table.Column<string>(type: "text", nullable: true),
                    device = table.Column<string>(type: "text", nullable: true),
                    version = table.Column<long>(type: "bigint", nullable: false),
                    updated_at = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_jobs", x => x.id);
                    table.CheckConstraint("ck_jobs_status", "status IN ('queued', 'running', 'cancelling', 'succeeded', 'failed', 'cancelled')");
                    table.ForeignKey(
                        name: "fk_jobs_datasets_dataset_id",
                        column: x => x.dataset_id,
                        principalTable: "datasets",
                        principalColumn: "id",
                        onDelete: ReferentialAction.SetNull);
                    table.ForeignKey(
                        name: "fk_jobs_jobs_retry_of",
                        column: x => x.retry_of,
                        principalTable: "jobs",
                        principalColumn: "id",
                        onDelete: ReferentialAction.SetNull);
                });

            migrationBuilder.CreateTable(
                name: "idempotency_keys",
                columns: table => new
                {
                    key = table.Column<string>(type: "character varying(255)", maxLength: 255, nullable: false),
                    request_hash = table.Column<string>(type: "text", nullable: false),
                    job_id = table.Column<Guid>(type: "uuid", nullable: false),
                    created_at = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_idempotency_keys", x => x.key);
                    table.ForeignKey(
                        name: "fk_idempotency_keys_jobs_job_id",
                        column: x => x.job_id,
                        principalTable: "jobs",
                        principalColumn: "id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateTable(
                name: "job_checkpoints",
                columns: table => new
                {
                    job_id = table.Column<Guid>(type: "uuid", nullable: false),
                    epoch = table.Column<int>(type: "integer", nullable: false),
                    data = table.Column<byte[]>(type: "bytea", nullable: false),
                    created_at = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_job_checkpoints", x => x.job_id);
                    table.ForeignKey(
                        name: "fk_job_checkpoints_jobs_job_id",
                        column: x => x.job_id,
                        principalTable: "jobs",
                        principalColumn: "id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateTable(
                name: "job_epochs",
                columns: table => new
                {
                    job_id = table.Column<Guid>(type: "uuid", nullable: false),
                    epoch = table.Column<int>(type: "integer", nullable: false),
                    train_loss = table.Column<double>(type: "double precision", nullable: false),
                    val_loss = table.Column<double>(type: "double precision", nullable: true),
                    regularization_loss = table.Column<double>(type: "double precision", nullable: false),
                    metrics = table.Column<string>(type: "jsonb", nullable: false),
                    learning_rate = table.Column<double>(type: "double precision", nullable: false),
                    gradient_norm = table.Column<double>(type: "double precision", nullable: false),
                    duration_ms = table.Column<double>(type: "double precision", nullable: false),
                    samples_per_second = table.Column<double>(type: "double precision", nullable: false),
                    recorded_at = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_job_epochs", x => new { x.job_id, x.epoch });
                    table.ForeignKey(
                        name: "fk_job_epochs_jobs_job_id",
                        column: x => x.job_id,
                        principalTable: "jobs",
                        principalColumn: "id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateTable(
                name: "job_models",
                columns: table => new
                {
                    job_id = table.Column<Guid>(type: "uuid", nullable: false),
                    model = table.Column<string>(type: "jsonb", nullable: false),
                    e_tag = table.Column<string>(type: "text", nullable: false),
                    created_at = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_job_models", x => x.job_id);
                    table.ForeignKey(
                        name: "fk_job_models_jobs_job_id",
                        column: x => x.job_id,
                        principalTable: "jobs",
                        principalColumn: "id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateIndex(
                name: "ix_datasets_created_at",
                table: "datasets",
                column: "created_at");

            migrationBuilder.CreateIndex(
                name: "ix_datasets_sha256",
                table: "datasets",
                column: "sha256",
                unique: true);

            migrationBuilder.CreateIndex(
                name: "ix_idempotency_keys_job_id",
                table: "idempotency_keys",
                column: "job_id");

            migrationBuilder.CreateIndex(
                name: "ix_jobs_created_at_id",
                table: "jobs",
                columns: new[] { "created_at", "id" },
                descending: new bool[0]);

            migrationBuilder.CreateIndex(
                name: "ix_jobs_dataset_id_created_at",
                table: "jobs",
                columns: new[] { "dataset_id", "created_at" });

            migrationBuilder.CreateIndex(
                name: "ix_jobs_retry_of",
                table: "jobs",
                column: "retry_of");

            migrationBuilder.CreateIndex(
                name: "ix_jobs_status_created_at",
                table: "jobs",
                columns: new[] { "status", "created_at" });

            // Chunks are streamed in (COPY) before their dataset row is written with the file's hash, in one transaction:
            // the foreign key is checked at commit. Chunk bytes are already dense, so TOAST compression only costs time.
            migrationBuilder.Sql("""
                ALTER TABLE dataset_chunks ALTER CONSTRAINT fk_dataset_chunks_datasets_dataset_id DEFERRABLE INITIALLY DEFERRED;
                ALTER TABLE dataset_chunks ALTER COLUMN data SET STORAGE EXTERNAL;
                ALTER TABLE job_checkpoints ALTER COLUMN data SET STORAGE EXTERNAL;
                """);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "dataset_chunks");

            migrationBuilder.DropTable(
                name: "idempotency_keys");

            migrationBuilder.DropTable(
                name: "job_checkpoints");

            migrationBuilder.DropTable(
                name: "job_epochs");

            migrationBuilder.DropTable(
                name: "job_models");

            migrationBuilder.DropTable(
                name: "jobs");

            migrationBuilder.DropTable(
                name: "datasets");
        }
    }
}
