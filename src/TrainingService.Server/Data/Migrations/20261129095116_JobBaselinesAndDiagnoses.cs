using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace TrainingService.Server.Data.Migrations
{
    /// <inheritdoc />
    public partial class JobBaselinesAndDiagnoses : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<string>(
                name: "baseline",
                table: "jobs",
                type: "jsonb",
                nullable: true);

            migrationBuilder.AddColumn<string>(
                name: "diagnoses",
                table: "jobs",
                type: "jsonb",
                nullable: true);

            migrationBuilder.AddColumn<int>(
                name: "model_epoch",
                table: "jobs",
                type: "integer",
                nullable: true);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropColumn(
                name: "baseline",
                table: "jobs");

            migrationBuilder.DropColumn(
                name: "diagnoses",
                table: "jobs");

            migrationBuilder.DropColumn(
                name: "model_epoch",
                table: "jobs");
        }
    }
}
