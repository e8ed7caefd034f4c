using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace TrainingService.Server.Data.Migrations
{
    /// <inheritdoc />
    public partial class DatasetIdentityIncludesDelimiter : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "ix_datasets_sha256",
                table: "datasets");

            migrationBuilder.CreateIndex(
                name: "ix_datasets_sha256_delimiter",
                table: "datasets",
                columns: new[] { "sha256", "delimiter" },
                unique: true);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "ix_datasets_sha256_delimiter",
                table: "datasets");

            migrationBuilder.CreateIndex(
                name: "ix_datasets_sha256",
                table: "datasets",
                column: "sha256",
                unique: true);
        }
    }
}
